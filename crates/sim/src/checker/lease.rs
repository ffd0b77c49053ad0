//! Lease invariants: a key attached to a lease disappears only once the lease was revoked or could have
//! expired, and a revoked lease stays dead.
//!
//! Every judgement is conservative, so an unknown outcome never causes a false alarm: the expiry deadline is
//! the earliest the server could have set (refresh invocation time + TTL, from grants and keep-alives known to
//! have succeeded; a keep-alive with unknown outcome may never have arrived, so it extends nothing), a revoke
//! with unknown outcome counts as a revoke, and a read is judged only when the key's last write before it is
//! unambiguous and nothing else wrote the key meanwhile.

use std::collections::{BTreeMap, HashMap};

use super::writes::{Write, Writes};
use crate::display::show;
use crate::history::{Call, EventKind, History, Operation, Outcome};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A broken lease invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseViolation {
    /// A read found a leased key gone before its lease could have expired, with no revoke.
    #[error(
        "read #{read} found {key} absent at {observed_by}ns, but put #{put} attached it to lease {lease}, \
         which was not revoked and could not expire before {deadline}ns"
    )]
    VanishedBeforeExpiry {
        /// The read that found the key absent.
        read: u64,
        /// The key.
        key: String,
        /// The put that attached the key to the lease.
        put: u64,
        /// The lease.
        lease: i64,
        /// The earliest the lease could have expired, less the skew allowance.
        deadline: u64,
        /// When the read completed.
        observed_by: u64,
    },
    /// A lease answered as alive after a revoke of it had completed.
    #[error("op #{op} used lease {lease} successfully after revoke #{revoke} completed")]
    UsedAfterRevoke {
        /// The keep-alive or put that succeeded.
        op: u64,
        /// The revoke.
        revoke: u64,
        /// The lease.
        lease: i64,
    },
}

/// What the history says about one lease.
#[derive(Default)]
struct LeaseFacts<'h> {
    /// (invocation time, TTL in seconds) of grants and keep-alives known to have succeeded.
    refreshes: Vec<(u64, i64)>,
    /// Revokes that did or may have happened.
    revokes: Vec<&'h Operation>,
    /// Keep-alives and puts that succeeded using the lease.
    uses: Vec<&'h Operation>,
}

/// Runs the lease checks.
pub fn check(history: &History, writes: &Writes<'_>, skew_allowance: u64) -> Vec<LeaseViolation> {
    let leases = lease_facts(history);
    let mut out = Vec::new();
    revoked_stays_dead(&leases, &mut out);
    let mut by_key: HashMap<&[u8], Vec<&Write<'_>>> = HashMap::new();
    for w in &writes.all {
        by_key.entry(w.key).or_default().push(w);
    }
    for op in &history.ops {
        let (Call::Get { key }, Outcome::Get { value: None, .. }, Some(observed_by)) =
            (&op.call, &op.outcome, op.known_completion())
        else {
            continue;
        };
        let Some(put) = by_key.get(key.as_slice()).and_then(|ws| sole_last_write(ws, op)) else { continue };
        let (Some(lease), EventKind::Put, Some(_)) = (put.lease, put.kind, put.revision) else { continue };
        let Some(facts) = leases.get(&lease) else { continue };
        if facts.revokes.iter().any(|r| r.invoke <= observed_by) {
            continue;
        }
        let deadline = facts
            .refreshes
            .iter()
            .filter(|(invoke, _)| *invoke <= observed_by)
            .map(|&(invoke, ttl)| invoke.saturating_add(u64::try_from(ttl).unwrap_or(0).saturating_mul(NANOS_PER_SEC)))
            .max();
        if let Some(deadline) = deadline.map(|d| d.saturating_sub(skew_allowance)).filter(|&d| observed_by < d) {
            out.push(LeaseViolation::VanishedBeforeExpiry {
                read: op.id,
                key: show(key),
                put: put.op.id,
                lease,
                deadline,
                observed_by,
            });
        }
    }
    out
}

/// Grants, keep-alives, revokes and leased puts, per lease id.
fn lease_facts(history: &History) -> BTreeMap<i64, LeaseFacts<'_>> {
    let mut leases: BTreeMap<i64, LeaseFacts<'_>> = BTreeMap::new();
    for op in &history.ops {
        match (&op.call, &op.outcome) {
            (Call::LeaseGrant { .. }, Outcome::LeaseGrant { lease, ttl_secs }) => {
                leases.entry(*lease).or_default().refreshes.push((op.invoke, *ttl_secs));
            }
            (Call::LeaseKeepAlive { lease }, Outcome::LeaseKeepAlive { ttl_secs }) if *ttl_secs > 0 => {
                let facts = leases.entry(*lease).or_default();
                facts.refreshes.push((op.invoke, *ttl_secs));
                facts.uses.push(op);
            }
            (Call::LeaseRevoke { lease }, Outcome::LeaseRevoke { .. } | Outcome::Unknown) => {
                leases.entry(*lease).or_default().revokes.push(op);
            }
            (Call::Put { lease: Some(lease), .. }, Outcome::Put { .. }) if *lease != 0 => {
                leases.entry(*lease).or_default().uses.push(op);
            }
            _ => {}
        }
    }
    leases
}

fn revoked_stays_dead(leases: &BTreeMap<i64, LeaseFacts<'_>>, out: &mut Vec<LeaseViolation>) {
    for (&lease, facts) in leases {
        let done = facts.revokes.iter().filter(|r| matches!(r.outcome, Outcome::LeaseRevoke { found: true }));
        for revoke in done {
            for op in facts.uses.iter().filter(|u| revoke.precedes(u)) {
                out.push(LeaseViolation::UsedAfterRevoke { op: op.id, revoke: revoke.id, lease });
            }
        }
    }
}

/// The write of `key` that certainly came last before `read`, if there is exactly one candidate and no write
/// of the key overlaps the read.
fn sole_last_write<'w, 'h>(writes: &[&'w Write<'h>], read: &Operation) -> Option<&'w Write<'h>> {
    let read_end = read.known_completion()?;
    let (before, overlapping): (Vec<&&Write<'h>>, Vec<_>) =
        writes.iter().filter(|w| w.op.invoke <= read_end).partition(|w| w.op.precedes(read));
    if !overlapping.is_empty() {
        return None;
    }
    let last = before.iter().max_by_key(|w| w.op.known_completion())?;
    before.iter().all(|w| w.op.id == last.op.id || w.op.precedes(last.op)).then_some(**last)
}
