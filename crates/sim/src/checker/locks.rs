//! The lock workload ([`crate::lock_workload`]), judged from the store's own history, never from wall-clock
//! guesses.
//!
//! What is known exactly. Every waiter's key `<name>/<lease>` is created by its Lock's enqueue txn (its create
//! revision is its place in the queue and its fencing token) and deleted by Unlock or by its lease's revocation
//! or expiry; the lock clients' watches of `<name>/` from revision 1 deliver each of those creates and deletes
//! with its revision (several watches, each resumed after a break; a compaction can leave a gap in one, which the
//! next response's `resumed_from` shows). From their union the checker knows, for every revision range that some
//! watch delivered without a gap, every *incarnation* of a key (created at `c`, deleted at `d` or not yet) that
//! lived in it. The Lock service answers with the header of the read that found no key created before the
//! waiter's own (or of the enqueue txn, when the waiter was first): an acknowledged grant with token `T` and
//! header revision `H` therefore claims that at revision `H` no key created before `T` existed.
//!
//! The checks, each on acknowledged grants (a Lock that timed out or failed is no holder, though its key stays in
//! the queue and is judged as a key ahead of others):
//! - **No two holders** (b): for each grant `(T, H)`, every incarnation created before `T` was deleted at or
//!   before `H`. A delete seen after `H`, or none seen while the watches cover every revision from its creation
//!   to `H`, is a violation: the grant was answered while an earlier waiter (the previous holder among them)
//!   still had its key. Grants whose window the watches do not cover are not judged.
//! - **Tokens only grow** (a): among grants whose own key still existed at `H` (a waiter whose lease expired
//!   while it waited is still answered, as etcd 3.4's service answers it, with a key already gone), tokens
//!   strictly increase with `H`; and a grant acknowledged before another Lock was sent has the smaller token
//!   (the later enqueue's create revision is above the earlier grant's header), whatever became of its key.
//! - **Fenced writes never interleave**: the successful fenced writes (a txn putting the data key only while the
//!   holder's key has the token as its create revision), in revision order, never go back to a smaller token.
//!   Two holders whose writes interleave are two holders at once, whatever the Lock answers said; a stalled
//!   holder's late write must fail once its key is gone.
//!
//! The token of a grant is the create revision the client read right after the grant; when the key was gone by
//! then, the latest create of the key at or before `H` that the watches saw.

use std::collections::{BTreeMap, BTreeSet};

use crate::display::show;
use crate::history::{EventKind, History, LockCall, LockOutcome, LockRecord, WatchLog};

/// A lock invariant broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockViolation {
    /// A grant answered while a key created before the holder's still existed.
    #[error(
        "client {client} was granted {key} (token {token}) at revision {granted_at} while {ahead} (created at {ahead_created}) still existed: {}",
        .ahead_deleted.map_or("no delete up to the grant".to_owned(), |d| format!("deleted only at {d}"))
    )]
    TwoHolders {
        /// The client granted.
        client: u32,
        /// Its key.
        key: String,
        /// Its token.
        token: i64,
        /// The grant's header revision.
        granted_at: i64,
        /// The key ahead of it.
        ahead: String,
        /// Its create revision.
        ahead_created: i64,
        /// Its delete revision, if one was seen.
        ahead_deleted: Option<i64>,
    },
    /// A later grant (by revision or in real time) with a token not above an earlier one's.
    #[error(
        "client {later_client} was granted token {later_token} at revision {later_at} after client {earlier_client} was granted token {earlier_token} at revision {earlier_at} ({how})"
    )]
    TokenNotIncreasing {
        /// The earlier grant's client.
        earlier_client: u32,
        /// Its token.
        earlier_token: i64,
        /// Its header revision.
        earlier_at: i64,
        /// The later grant's client.
        later_client: u32,
        /// Its token.
        later_token: i64,
        /// Its header revision.
        later_at: i64,
        /// Which order: by revision (both keys alive) or in real time.
        how: &'static str,
    },
    /// Two holders' fenced writes interleaved.
    #[error(
        "fenced write of client {later_client} with token {later_token} took effect at revision {later_at}, after client {earlier_client}'s with the larger token {earlier_token} at revision {earlier_at}"
    )]
    FencedWritesInterleaved {
        /// The earlier write's client.
        earlier_client: u32,
        /// Its token.
        earlier_token: i64,
        /// Its revision.
        earlier_at: i64,
        /// The later write's client.
        later_client: u32,
        /// Its token.
        later_token: i64,
        /// Its revision.
        later_at: i64,
    },
}

/// One life of a waiter's key.
#[derive(Clone, Debug)]
struct Incarnation {
    key: Vec<u8>,
    created: i64,
    deleted: Option<i64>,
}

/// What the watches saw: every incarnation, and the revisions they cover without a gap.
struct KeyHistory {
    incarnations: Vec<Incarnation>,
    /// Disjoint, sorted, inclusive revision ranges some watch delivered completely.
    covered: Vec<(i64, i64)>,
}

impl KeyHistory {
    fn of(watches: &[WatchLog]) -> KeyHistory {
        let mut events: BTreeMap<i64, (EventKind, Vec<u8>)> = BTreeMap::new();
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        for log in watches {
            let (mut lo, mut hi) = (log.start_revision.max(1), log.start_revision.max(1) - 1);
            for resp in &log.responses {
                if let Some(from) = resp.resumed_from
                    && from > hi + 1
                {
                    if hi >= lo {
                        ranges.push((lo, hi));
                    }
                    (lo, hi) = (from, from - 1);
                }
                for e in &resp.events {
                    events.entry(e.mod_revision).or_insert_with(|| (e.kind, e.key.clone()));
                    hi = hi.max(e.mod_revision);
                }
            }
            if hi >= lo {
                ranges.push((lo, hi));
            }
        }
        ranges.sort_unstable();
        let mut covered: Vec<(i64, i64)> = Vec::new();
        for (lo, hi) in ranges {
            match covered.last_mut() {
                Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
                _ => covered.push((lo, hi)),
            }
        }
        let mut incarnations: Vec<Incarnation> = Vec::new();
        let mut open: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (revision, (kind, key)) in events {
            match kind {
                EventKind::Put => {
                    // Lock keys are only ever created (the enqueue txn puts only a key that does not exist).
                    if !open.contains_key(&key) {
                        open.insert(key.clone(), incarnations.len());
                        incarnations.push(Incarnation { key, created: revision, deleted: None });
                    }
                }
                EventKind::Delete => {
                    if let Some(i) = open.remove(&key) {
                        incarnations[i].deleted = Some(revision);
                    }
                }
            }
        }
        KeyHistory { incarnations, covered }
    }

    /// Whether every revision in `lo..=hi` was delivered by some watch.
    fn covers(&self, lo: i64, hi: i64) -> bool {
        lo > hi || self.covered.iter().any(|(a, b)| *a <= lo && hi <= *b)
    }

    /// Whether `inc` certainly existed at `revision` (`None`: not known).
    fn alive_at(&self, inc: &Incarnation, revision: i64) -> Option<bool> {
        if inc.created > revision {
            return Some(false);
        }
        match inc.deleted {
            Some(d) => Some(d > revision),
            None => self.covers(inc.created + 1, revision).then_some(true),
        }
    }

    /// The latest incarnation of `key` created at or before `revision`.
    fn incarnation_at(&self, key: &[u8], revision: i64) -> Option<&Incarnation> {
        self.incarnations.iter().filter(|i| i.key == key && i.created <= revision).max_by_key(|i| i.created)
    }
}

/// An acknowledged grant.
struct Grant {
    client: u32,
    invoke: u64,
    complete: u64,
    key: Vec<u8>,
    at: i64,
    token: Option<i64>,
}

/// Checks the lock workload of `history` (nothing, for a history recorded without it).
pub fn check(history: &History) -> Vec<LockViolation> {
    match &history.locks {
        Some(record) => check_record(record),
        None => Vec::new(),
    }
}

fn check_record(record: &LockRecord) -> Vec<LockViolation> {
    let keys = KeyHistory::of(&record.watches);
    let grants: Vec<Grant> = record
        .ops
        .iter()
        .filter_map(|op| match (&op.call, &op.outcome, op.complete) {
            (LockCall::Lock { .. }, LockOutcome::Granted { key, revision, token }, Some(complete)) => {
                let token = token.or_else(|| keys.incarnation_at(key, *revision).map(|i| i.created));
                Some(Grant { client: op.client, invoke: op.invoke, complete, key: key.clone(), at: *revision, token })
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    two_holders(&keys, &grants, &mut out);
    tokens_grow(&keys, &grants, &mut out);
    fenced_writes(record, &mut out);
    out
}

/// (b): no key created before a grant's token existed at its header revision.
fn two_holders(keys: &KeyHistory, grants: &[Grant], out: &mut Vec<LockViolation>) {
    for g in grants {
        let Some(token) = g.token else { continue };
        // The first key ahead still alive is enough to name the fault (the previous holder, usually).
        let ahead = keys
            .incarnations
            .iter()
            .filter(|i| i.created < token)
            .filter(|i| keys.alive_at(i, g.at) == Some(true))
            .max_by_key(|i| i.created);
        if let Some(i) = ahead {
            out.push(LockViolation::TwoHolders {
                client: g.client,
                key: show(&g.key),
                token,
                granted_at: g.at,
                ahead: show(&i.key),
                ahead_created: i.created,
                ahead_deleted: i.deleted,
            });
        }
    }
}

/// (a): tokens grow with the grant revision (holders whose key existed at it) and in real time (every grant).
fn tokens_grow(keys: &KeyHistory, grants: &[Grant], out: &mut Vec<LockViolation>) {
    let mut alive: Vec<(i64, i64, u32, &[u8])> = grants
        .iter()
        .filter_map(|g| {
            let token = g.token?;
            let inc = keys.incarnation_at(&g.key, g.at).filter(|i| i.created == token)?;
            (keys.alive_at(inc, g.at) == Some(true)).then_some((g.at, token, g.client, g.key.as_slice()))
        })
        .collect();
    alive.sort_unstable();
    let mut reported: BTreeSet<(i64, i64)> = BTreeSet::new();
    for pair in alive.windows(2) {
        let ((at1, t1, c1, k1), (at2, t2, c2, k2)) = (pair[0], pair[1]);
        // One holder answered twice with one key (a repeated Lock of the same lease) is one incarnation.
        if (t1, k1) == (t2, k2) {
            continue;
        }
        if t2 <= t1 && reported.insert((t1, t2)) {
            out.push(LockViolation::TokenNotIncreasing {
                earlier_client: c1,
                earlier_token: t1,
                earlier_at: at1,
                later_client: c2,
                later_token: t2,
                later_at: at2,
                how: "by grant revision, both keys alive",
            });
        }
    }
    let mut by_completion: Vec<&Grant> = grants.iter().filter(|g| g.token.is_some()).collect();
    by_completion.sort_by_key(|g| g.complete);
    for later in grants {
        let Some(t2) = later.token else { continue };
        // The largest token among grants acknowledged before this Lock was sent.
        let earlier = by_completion
            .iter()
            .take_while(|g| g.complete < later.invoke)
            .filter(|g| g.key != later.key)
            .max_by_key(|g| g.token);
        if let Some(e) = earlier
            && let Some(t1) = e.token
            && t2 <= t1
            && reported.insert((t1, t2))
        {
            out.push(LockViolation::TokenNotIncreasing {
                earlier_client: e.client,
                earlier_token: t1,
                earlier_at: e.at,
                later_client: later.client,
                later_token: t2,
                later_at: later.at,
                how: "in real time",
            });
        }
    }
}

/// Successful fenced writes, by revision, never go back to a smaller token.
fn fenced_writes(record: &LockRecord, out: &mut Vec<LockViolation>) {
    let mut writes: Vec<(i64, i64, u32)> = record
        .ops
        .iter()
        .filter_map(|op| match (&op.call, &op.outcome) {
            (LockCall::FencedWrite { token, .. }, LockOutcome::Written { succeeded: true, revision }) => {
                Some((*revision, *token, op.client))
            }
            _ => None,
        })
        .collect();
    writes.sort_unstable();
    let mut top: Option<(i64, i64, u32)> = None;
    for (at, token, client) in writes {
        match top {
            Some((top_at, top_token, top_client)) if token < top_token => {
                out.push(LockViolation::FencedWritesInterleaved {
                    earlier_client: top_client,
                    earlier_token: top_token,
                    earlier_at: top_at,
                    later_client: client,
                    later_token: token,
                    later_at: at,
                });
            }
            Some((_, top_token, _)) if token == top_token => {}
            _ => top = Some((at, token, client)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{LockOp, WatchEventRecord, WatchResponseRecord};

    fn watch(events: &[(EventKind, &str, i64)]) -> WatchLog {
        WatchLog {
            client: 400,
            key: b"n/".to_vec(),
            range_end: b"n0".to_vec(),
            start_revision: 1,
            responses: events
                .iter()
                .map(|(kind, key, rev)| WatchResponseRecord {
                    at: 0,
                    header_revision: *rev,
                    events: vec![WatchEventRecord {
                        kind: *kind,
                        key: key.as_bytes().to_vec(),
                        value: Vec::new(),
                        mod_revision: *rev,
                    }],
                    resumed_from: None,
                })
                .collect(),
            canceled: None,
        }
    }

    fn grant(id: u64, client: u32, span: (u64, u64), key: &str, at: i64, token: i64) -> LockOp {
        LockOp {
            id,
            client,
            invoke: span.0,
            complete: Some(span.1),
            call: LockCall::Lock { lease: 1 },
            outcome: LockOutcome::Granted { key: key.as_bytes().to_vec(), revision: at, token: Some(token) },
        }
    }

    fn write(id: u64, client: u32, token: i64, at: i64) -> LockOp {
        LockOp {
            id,
            client,
            invoke: 0,
            complete: Some(1),
            call: LockCall::FencedWrite { key: Vec::new(), token, value: Vec::new() },
            outcome: LockOutcome::Written { succeeded: true, revision: at },
        }
    }

    use EventKind::{Delete, Put};

    #[test]
    fn a_grant_after_the_previous_key_was_deleted_is_fine() {
        // a holds from 2, b waits from 3, a unlocks at 5, b is granted at 6 (the read after the delete).
        let record = LockRecord {
            name: b"n".to_vec(),
            ops: vec![grant(0, 1, (0, 10), "n/a", 2, 2), grant(1, 2, (5, 60), "n/b", 6, 3), write(2, 1, 2, 4)],
            watches: vec![watch(&[(Put, "n/a", 2), (Put, "n/b", 3), (Delete, "n/a", 5), (Put, "n/c", 8)])],
        };
        assert_eq!(check_record(&record), []);
    }

    #[test]
    fn a_grant_while_the_holder_still_has_its_key_is_two_holders() {
        let record = LockRecord {
            name: b"n".to_vec(),
            ops: vec![
                grant(0, 1, (0, 10), "n/a", 2, 2),
                grant(1, 2, (5, 20), "n/b", 3, 3),
                write(2, 2, 3, 4),
                write(3, 1, 2, 5),
            ],
            watches: vec![watch(&[(Put, "n/a", 2), (Put, "n/b", 3), (Delete, "n/a", 6)])],
        };
        let found = check_record(&record);
        assert!(
            matches!(found[0], LockViolation::TwoHolders { ahead_deleted: Some(6), granted_at: 3, .. }),
            "{found:?}"
        );
        assert!(found.iter().any(|v| matches!(v, LockViolation::FencedWritesInterleaved { later_token: 2, .. })));
    }

    #[test]
    fn a_key_never_deleted_counts_only_where_the_watches_cover() {
        let ops = vec![grant(0, 1, (0, 10), "n/a", 2, 2), grant(1, 2, (5, 20), "n/b", 4, 3)];
        let covered = LockRecord {
            name: b"n".to_vec(),
            ops: ops.clone(),
            watches: vec![watch(&[(Put, "n/a", 2), (Put, "n/b", 3), (Put, "n/c", 9)])],
        };
        assert!(matches!(check_record(&covered)[0], LockViolation::TwoHolders { ahead_deleted: None, .. }));
        // The watch ends at 3: whether n/a was deleted at 4 is not known.
        let short = LockRecord { name: b"n".to_vec(), ops, watches: vec![watch(&[(Put, "n/a", 2), (Put, "n/b", 3)])] };
        assert_eq!(check_record(&short), []);
    }

    #[test]
    fn a_dead_waiter_answered_late_is_no_second_holder_but_tokens_must_grow_in_real_time() {
        // b's lease expired while it waited (its key went at 4); c was granted at 6 with token 5; b is answered at
        // 7 with its dead key: fine. A grant sent after c's was acknowledged with a smaller token is not.
        let ops = vec![
            grant(0, 1, (0, 10), "n/a", 2, 2),
            grant(1, 3, (11, 20), "n/c", 6, 5),
            grant(2, 2, (5, 30), "n/b", 7, 3),
        ];
        let events = [(Put, "n/a", 2), (Put, "n/b", 3), (Delete, "n/b", 4), (Put, "n/c", 5), (Delete, "n/a", 6)];
        let record = LockRecord { name: b"n".to_vec(), ops: ops.clone(), watches: vec![watch(&events)] };
        assert_eq!(check_record(&record), []);
        let mut late = ops;
        late[2].invoke = 25;
        let record = LockRecord { name: b"n".to_vec(), ops: late, watches: vec![watch(&events)] };
        assert!(matches!(check_record(&record)[..], [LockViolation::TokenNotIncreasing { how: "in real time", .. }]));
    }
}
