//! Serializable reads. A member answers them from its own store, which may be behind the leader's, so they are
//! not linearizable; but each must show the store exactly as of the header revision it reports. Judged against
//! every change whose revision is known, from the writes' replies and from the watch streams: the key's last
//! change at or below the header revision is the one the read returns.
//!
//! And a member that restarted may be behind, but not behind the moment it came back: etcd serves no client
//! before its start-up entry applies, so every read it answers reflects everything committed when it started.
//! A serializable read sent to a member after its latest restart must show a header revision at least that of
//! every write acknowledged before the restart (acknowledged writes were committed by then). Without this, a
//! member answering from the state it had before it stopped passed (Patroni found it: a restarted member told
//! the old primary the leader key was still its own).

use std::collections::{BTreeMap, BTreeSet};

use super::writes::Writes;
use crate::display::show;
use crate::history::{Call, EventKind, History, Outcome};

/// A serializable read that does not show the store as of its own header revision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerializableViolation {
    /// The read returned a value no call ever wrote.
    #[error("serializable read #{read} returned {value}, which no call wrote")]
    UnwrittenValue {
        /// The read.
        read: u64,
        /// The value, rendered.
        value: String,
    },
    /// The key changed after the revision the read shows and at or below its header revision.
    #[error(
        "serializable read #{read} at header revision {header} shows the key as of revision {shown}, \
         but it changed at revision {changed}"
    )]
    MissedChange {
        /// The read.
        read: u64,
        /// Its header revision.
        header: i64,
        /// The mod revision of what it returned; 0 when it found the key absent.
        shown: i64,
        /// A known change of the key in `(shown, header]`.
        changed: i64,
    },
    /// A restarted member answered from before its restart.
    #[error(
        "serializable read #{read} through {member}, sent after its restart at {restarted_ns} ns, shows header \
         revision {header}, below revision {acknowledged} acknowledged before that restart"
    )]
    BeforeRestart {
        /// The read.
        read: u64,
        /// The member's client URL.
        member: String,
        /// When it restarted (simulated ns).
        restarted_ns: u64,
        /// The read's header revision.
        header: i64,
        /// The highest revision acknowledged to a client before the restart.
        acknowledged: i64,
    },
}

/// Checks every serializable read that returned.
pub fn check(history: &History, writes: &Writes<'_>) -> Vec<SerializableViolation> {
    let changes = known_changes(history, writes);
    // An absent key is explained by a delete the history cannot date.
    let undated_deletes: BTreeSet<&[u8]> =
        writes.all.iter().filter(|w| w.kind == EventKind::Delete && w.revision.is_none()).map(|w| w.key).collect();
    let mut out = before_restarts(history);
    for op in &history.ops {
        let (Call::LocalGet { key, .. }, Outcome::Get { value, mod_revision, revision: header }) =
            (&op.call, &op.outcome)
        else {
            continue;
        };
        let read = op.id;
        if let Some(v) = value.as_deref().filter(|v| writes.writing_value(v).is_none()) {
            out.push(SerializableViolation::UnwrittenValue { read, value: show(v) });
            continue;
        }
        let Some(of_key) = changes.get(key.as_slice()) else { continue };
        let missed = match value {
            // Any change after the returned write and within the header was missed.
            // (A mod revision above the header is the revision check's to report.)
            Some(_) if mod_revision >= header => None,
            Some(_) => of_key.range(mod_revision + 1..=*header).next_back().map(|(r, _)| *r),
            // Absent: the last dated change within the header must not be a put, unless an undated delete
            // may have followed it.
            None => of_key
                .range(..=*header)
                .next_back()
                .filter(|(_, kind)| **kind == EventKind::Put && !undated_deletes.contains(key.as_slice()))
                .map(|(r, _)| *r),
        };
        if let Some(changed) = missed {
            out.push(SerializableViolation::MissedChange { read, header: *header, shown: *mod_revision, changed });
        }
    }
    out
}

/// Serializable reads sent to a restarted member that show less than was acknowledged before its restart.
fn before_restarts(history: &History) -> Vec<SerializableViolation> {
    // Acknowledged writes, by the time their answer came: (completed, revision).
    let mut acked: Vec<(u64, i64)> = history
        .ops
        .iter()
        .filter_map(|op| {
            let revision = match op.outcome {
                Outcome::Put { revision } => revision,
                Outcome::Delete { deleted, revision } if deleted > 0 => revision,
                Outcome::Cas { succeeded: true, revision } => revision,
                _ => return None,
            };
            Some((op.complete?, revision))
        })
        .collect();
    acked.sort_unstable();
    // The highest revision acknowledged strictly before `t`.
    let floor = |t: u64| {
        let n = acked.partition_point(|(done, _)| *done < t);
        acked[..n].iter().map(|(_, r)| *r).max().unwrap_or(0)
    };
    let mut out = Vec::new();
    for op in &history.ops {
        let (Call::LocalGet { member, .. }, Outcome::Get { revision: header, .. }) = (&op.call, &op.outcome) else {
            continue;
        };
        let restarted =
            history.restarts.iter().filter(|r| r.member == *member && r.at <= op.invoke).map(|r| r.at).max();
        let Some(restarted_ns) = restarted else { continue };
        let acknowledged = floor(restarted_ns);
        if *header < acknowledged {
            out.push(SerializableViolation::BeforeRestart {
                read: op.id,
                member: member.clone(),
                restarted_ns,
                header: *header,
                acknowledged,
            });
        }
    }
    out
}

/// How many serializable reads returned (and so were checked).
pub fn answered(history: &History) -> usize {
    history
        .ops
        .iter()
        .filter(|op| matches!((&op.call, &op.outcome), (Call::LocalGet { .. }, Outcome::Get { .. })))
        .count()
}

/// Per key, every change with a known revision: replies of writes, then events of watches.
fn known_changes<'h>(history: &'h History, writes: &Writes<'h>) -> BTreeMap<&'h [u8], BTreeMap<i64, EventKind>> {
    let mut changes: BTreeMap<&[u8], BTreeMap<i64, EventKind>> = BTreeMap::new();
    for (w, revision) in writes.known() {
        changes.entry(w.key).or_default().insert(revision, w.kind);
    }
    let events = history.watches.iter().flat_map(|w| &w.responses).flat_map(|r| &r.events);
    for e in events {
        changes.entry(e.key.as_slice()).or_default().insert(e.mod_revision, e.kind);
    }
    changes
}
