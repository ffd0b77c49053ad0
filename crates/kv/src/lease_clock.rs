//! `LeaseClock`: the leader-side, non-replicated lease expiry clock. It only says which leases are due;
//! the server turns that into LeaseRevoke commands through the log, so every replica deletes the same
//! keys at the same revision. Time is an argument (milliseconds since any fixed epoch); nothing here
//! reads a clock.
//!
//! Like etcd's lessor, the clock is either primary (leader: tracks deadlines, reports expiries) or not
//! (follower: knows TTLs, expires nothing). A new clock is not primary; `promote` on winning leadership
//! gives every lease its full TTL from that moment, which is how a new leader extends remaining TTLs.

use std::collections::BTreeMap;

use meridian_types::LeaseId;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    ttl_secs: i64,
    /// Deadline in ms; `None` while not primary.
    expiry_ms: Option<u64>,
}

/// Non-replicated lease expiry clock. Time is passed in (milliseconds since an arbitrary epoch).
#[derive(Clone, Debug, Default)]
pub struct LeaseClock {
    primary: bool,
    leases: BTreeMap<LeaseId, Entry>,
}

fn deadline(now_ms: u64, ttl_secs: i64) -> u64 {
    let ttl_ms = u64::try_from(ttl_secs.max(0)).unwrap_or(0).saturating_mul(1000);
    now_ms.saturating_add(ttl_ms)
}

impl LeaseClock {
    /// A clock that is not primary and knows no leases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the clock tracks deadlines (this node leads).
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// A lease was granted (applied); its deadline is `ttl_secs` from `now_ms` when primary.
    pub fn granted(&mut self, id: LeaseId, ttl_secs: i64, now_ms: u64) {
        let expiry_ms = self.primary.then(|| deadline(now_ms, ttl_secs));
        self.leases.insert(id, Entry { ttl_secs, expiry_ms });
    }

    /// A keep-alive: the lease gets its full TTL from `now_ms` again. Returns the TTL; None if unknown, or if
    /// the lease is already due: its revoke may be on its way through the log, and renewing it would tell
    /// the client it lives while its keys are about to vanish (etcd refuses such a renewal too).
    pub fn renew(&mut self, id: LeaseId, now_ms: u64) -> Option<i64> {
        let primary = self.primary;
        let e = self.leases.get_mut(&id)?;
        if primary {
            if e.expiry_ms.is_some_and(|exp| exp <= now_ms) {
                return None;
            }
            e.expiry_ms = Some(deadline(now_ms, e.ttl_secs));
        }
        Some(e.ttl_secs)
    }

    /// The lease is gone (revoked or expired and applied).
    pub fn revoked(&mut self, id: LeaseId) {
        self.leases.remove(&id);
    }

    /// Whole seconds left (truncated, as etcd reports TTL; 0 once due). Not primary: the granted TTL.
    /// None if unknown.
    pub fn remaining_secs(&self, id: LeaseId, now_ms: u64) -> Option<i64> {
        let e = self.leases.get(&id)?;
        Some(match e.expiry_ms {
            Some(exp) => i64::try_from(exp.saturating_sub(now_ms) / 1000).unwrap_or(i64::MAX),
            None => e.ttl_secs,
        })
    }

    /// Due leases (deadline <= now), oldest deadline first, ties by id. Empty when not primary.
    pub fn expired(&self, now_ms: u64) -> Vec<LeaseId> {
        let mut due: Vec<(u64, LeaseId)> = self
            .leases
            .iter()
            .filter_map(|(id, e)| e.expiry_ms.filter(|&exp| exp <= now_ms).map(|exp| (exp, *id)))
            .collect();
        due.sort();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// On becoming leader: every lease gets its full TTL from now (etcd's Promote). `leases` (id, TTL in
    /// seconds) replaces what the clock knew, so pass every lease of the replicated state.
    pub fn promote(&mut self, leases: impl IntoIterator<Item = (LeaseId, i64)>, now_ms: u64) {
        self.primary = true;
        self.leases = leases
            .into_iter()
            .map(|(id, ttl_secs)| (id, Entry { ttl_secs, expiry_ms: Some(deadline(now_ms, ttl_secs)) }))
            .collect();
    }

    /// On losing leadership: stop tracking deadlines (nothing expires until the next promote).
    pub fn demote(&mut self) {
        self.primary = false;
        for e in self.leases.values_mut() {
            e.expiry_ms = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L1: LeaseId = LeaseId(1);
    const L2: LeaseId = LeaseId(2);

    fn primary_at(now: u64) -> LeaseClock {
        let mut c = LeaseClock::new();
        c.promote([], now);
        c
    }

    #[test]
    fn lease_clock_expires_after_ttl() {
        let mut c = primary_at(0);
        c.granted(L1, 5, 1_000);
        assert_eq!(c.remaining_secs(L1, 1_000), Some(5));
        assert_eq!(c.remaining_secs(L1, 2_500), Some(3));
        assert!(c.expired(5_999).is_empty());
        assert_eq!(c.expired(6_000), vec![L1]);
        assert_eq!(c.remaining_secs(L1, 7_000), Some(0));
    }

    #[test]
    fn lease_clock_renew_restarts_ttl() {
        let mut c = primary_at(0);
        c.granted(L1, 5, 0);
        assert_eq!(c.renew(L1, 4_000), Some(5));
        assert!(c.expired(8_999).is_empty());
        assert_eq!(c.expired(9_000), vec![L1]);
        assert_eq!(c.renew(L2, 0), None);
    }

    #[test]
    fn lease_clock_refuses_to_renew_a_lease_already_due() {
        let mut c = primary_at(0);
        c.granted(L1, 3, 0);
        assert_eq!(c.expired(3_000), vec![L1], "due: its revoke is being proposed");
        assert_eq!(c.renew(L1, 3_010), None, "a late keep-alive must not revive it");
        assert_eq!(c.expired(3_020), vec![L1], "still due until the revoke applies");
        c.revoked(L1);
        assert_eq!(c.renew(L1, 3_030), None);
    }

    #[test]
    fn lease_clock_expired_is_oldest_first() {
        let mut c = primary_at(0);
        c.granted(L2, 1, 0);
        c.granted(L1, 2, 0);
        c.granted(LeaseId(3), 1, 0);
        assert_eq!(c.expired(10_000), vec![L2, LeaseId(3), L1]);
    }

    #[test]
    fn lease_clock_revoked_is_forgotten() {
        let mut c = primary_at(0);
        c.granted(L1, 1, 0);
        c.revoked(L1);
        assert!(c.expired(10_000).is_empty());
        assert_eq!(c.remaining_secs(L1, 0), None);
    }

    #[test]
    fn lease_clock_promote_extends_remaining() {
        let mut c = primary_at(0);
        c.granted(L1, 10, 0);
        assert_eq!(c.remaining_secs(L1, 8_000), Some(2));
        c.demote();
        c.promote([(L1, 10)], 8_000);
        assert_eq!(c.remaining_secs(L1, 8_000), Some(10));
        assert!(c.expired(17_999).is_empty());
        assert_eq!(c.expired(18_000), vec![L1]);
    }

    #[test]
    fn lease_clock_not_primary_expires_nothing() {
        let mut c = LeaseClock::new();
        c.granted(L1, 1, 0);
        assert!(!c.is_primary());
        assert!(c.expired(u64::MAX).is_empty());
        assert_eq!(c.remaining_secs(L1, 1_000_000), Some(1));
        c.promote([(L1, 1)], 0);
        c.demote();
        assert!(c.expired(u64::MAX).is_empty());
    }

    #[test]
    fn lease_clock_huge_ttl_saturates() {
        let mut c = primary_at(u64::MAX - 10);
        c.granted(L1, crate::MAX_LEASE_TTL, u64::MAX - 10);
        assert!(c.expired(u64::MAX - 1).is_empty());
    }
}
