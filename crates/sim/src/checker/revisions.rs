//! Revision invariants, in one pass over the history: every write has its own revision, revisions follow real
//! time, reads report the revision of the write they observe, and a client never sees the store go back
//! through linearizable calls (a serializable read may come from a member that is behind).

use std::collections::{BTreeMap, HashMap};

use super::writes::Writes;
use crate::display::show;
use crate::history::{Call, History, Outcome};

/// A broken revision invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionViolation {
    /// Two writes report the same revision.
    #[error("ops #{first} and #{second} both report write revision {revision}")]
    DuplicateRevision {
        /// The shared revision.
        revision: i64,
        /// The first write.
        first: u64,
        /// The second write.
        second: u64,
    },
    /// A write got a revision no higher than one that completed before it was invoked.
    #[error(
        "op #{later} (revision {later_revision}) was invoked after op #{earlier} (revision {earlier_revision}) completed"
    )]
    RealTimeOrder {
        /// The write that completed first.
        earlier: u64,
        /// Its revision.
        earlier_revision: i64,
        /// The write invoked afterwards.
        later: u64,
        /// Its revision, which should be higher.
        later_revision: i64,
    },
    /// A read's mod revision differs from the revision of the write whose value it returned.
    #[error("read #{read} of {value} reports mod revision {got}, but write #{write} created it at revision {expected}")]
    ReadModRevision {
        /// The read.
        read: u64,
        /// The value read, rendered.
        value: String,
        /// The write of that value.
        write: u64,
        /// The write's revision.
        expected: i64,
        /// The mod revision the read reported.
        got: i64,
    },
    /// A read found the key absent but reported a mod revision.
    #[error("read #{read} found the key absent but reports mod revision {mod_revision}")]
    AbsentWithModRevision {
        /// The read.
        read: u64,
        /// The reported mod revision.
        mod_revision: i64,
    },
    /// A read's mod revision is above its own header revision.
    #[error("read #{read} reports mod revision {mod_revision} above its header revision {header}")]
    ModRevisionAboveHeader {
        /// The read.
        read: u64,
        /// The reported mod revision.
        mod_revision: i64,
        /// The header revision.
        header: i64,
    },
    /// A client saw a lower header revision after a higher one.
    #[error(
        "client {client}: op #{later} saw header revision {later_revision} after op #{earlier} saw {earlier_revision}"
    )]
    HeaderWentBackwards {
        /// The client.
        client: u32,
        /// The earlier operation.
        earlier: u64,
        /// Its header revision.
        earlier_revision: i64,
        /// The operation invoked after it completed.
        later: u64,
        /// Its lower header revision.
        later_revision: i64,
    },
}

/// One timed, revisioned operation for the real-time sweeps: (invoke, known completion, revision, op id).
type Timed = (u64, Option<u64>, i64, u64);

/// Runs every revision check.
pub fn check(history: &History, writes: &Writes<'_>) -> Vec<RevisionViolation> {
    let mut out = Vec::new();
    unique_revisions(writes, &mut out);
    writes_follow_real_time(writes, &mut out);
    reads_report_write_revisions(history, writes, &mut out);
    headers_never_go_back(history, &mut out);
    out
}

fn unique_revisions(writes: &Writes<'_>, out: &mut Vec<RevisionViolation>) {
    let mut seen: HashMap<i64, u64> = HashMap::new();
    for (w, revision) in writes.known() {
        if let Some(&first) = seen.get(&revision) {
            out.push(RevisionViolation::DuplicateRevision { revision, first, second: w.op.id });
        } else {
            seen.insert(revision, w.op.id);
        }
    }
}

fn writes_follow_real_time(writes: &Writes<'_>, out: &mut Vec<RevisionViolation>) {
    let timed: Vec<Timed> = writes.known().map(|(w, r)| (w.op.invoke, w.op.known_completion(), r, w.op.id)).collect();
    for (b, before) in highest_completed_before(&timed).into_iter().enumerate() {
        let (_, _, later_revision, later) = timed[b];
        if let Some((earlier_revision, earlier)) = before.filter(|&(r, _)| r >= later_revision) {
            out.push(RevisionViolation::RealTimeOrder { earlier, earlier_revision, later, later_revision });
        }
    }
}

fn reads_report_write_revisions(history: &History, writes: &Writes<'_>, out: &mut Vec<RevisionViolation>) {
    for op in &history.ops {
        let (Call::Get { .. } | Call::LocalGet { .. }, Outcome::Get { value, mod_revision, revision }) =
            (&op.call, &op.outcome)
        else {
            continue;
        };
        let (read, got) = (op.id, *mod_revision);
        match value {
            None if got != 0 => out.push(RevisionViolation::AbsentWithModRevision { read, mod_revision: got }),
            None => {}
            Some(v) => {
                let written = writes.writing_value(v).and_then(|w| w.revision.map(|r| (w.op.id, r)));
                if let Some((write, expected)) = written.filter(|&(_, r)| r != got) {
                    out.push(RevisionViolation::ReadModRevision { read, value: show(v), write, expected, got });
                }
            }
        }
        if got > *revision {
            out.push(RevisionViolation::ModRevisionAboveHeader { read, mod_revision: got, header: *revision });
        }
    }
}

fn headers_never_go_back(history: &History, out: &mut Vec<RevisionViolation>) {
    let mut per_client: BTreeMap<u32, Vec<Timed>> = BTreeMap::new();
    for op in history.ops.iter().filter(|op| !matches!(op.call, Call::LocalGet { .. })) {
        if let Some(rev) = op.outcome.header_revision() {
            per_client.entry(op.client).or_default().push((op.invoke, op.known_completion(), rev, op.id));
        }
    }
    for (client, timed) in per_client {
        for (b, before) in highest_completed_before(&timed).into_iter().enumerate() {
            let (_, _, later_revision, later) = timed[b];
            if let Some((earlier_revision, earlier)) = before.filter(|&(r, _)| r > later_revision) {
                out.push(RevisionViolation::HeaderWentBackwards {
                    client,
                    earlier,
                    earlier_revision,
                    later,
                    later_revision,
                });
            }
        }
    }
}

/// For each item, the highest (revision, op id) among the items that completed strictly before it was invoked.
fn highest_completed_before(items: &[Timed]) -> Vec<Option<(i64, u64)>> {
    let mut by_completion: Vec<(u64, i64, u64)> =
        items.iter().filter_map(|&(_, complete, rev, id)| complete.map(|c| (c, rev, id))).collect();
    by_completion.sort_unstable();
    let mut by_invocation: Vec<usize> = (0..items.len()).collect();
    by_invocation.sort_by_key(|&i| items[i].0);
    let mut result = vec![None; items.len()];
    let mut best: Option<(i64, u64)> = None;
    let mut next = 0;
    for i in by_invocation {
        while let Some(&(_, rev, id)) = by_completion.get(next).filter(|(c, ..)| *c < items[i].0) {
            best = best.max(Some((rev, id)));
            next += 1;
        }
        result[i] = best;
    }
    result
}
