//! Lease invariants over hand-written histories. Times are in simulated nanoseconds; leases last 10 s and
//! the default skew allowance is 1 s.

use super::util::Hist;
use crate::checker::LeaseViolation;
use crate::history::{Call, Outcome};

const S: u64 = 1_000_000_000;
const LEASE: i64 = 7;

/// Lease 7 (10 s) granted during [0, 10ms], and key "a" put on it during [20ms, 30ms] at revision 2.
fn leased_key() -> Hist {
    let mut h = Hist::new();
    h.op(
        1,
        (0, Some(10_000_000)),
        Call::LeaseGrant { ttl_secs: 10 },
        Outcome::LeaseGrant { lease: LEASE, ttl_secs: 10 },
    );
    h.put_leased(1, (20_000_000, 30_000_000), "a", "1", LEASE, 2);
    h
}

fn keepalive(h: &mut Hist, at: u64, outcome: Outcome) -> u64 {
    let complete = (!matches!(outcome, Outcome::Unknown)).then_some(at + 1000);
    h.op(1, (at, complete), Call::LeaseKeepAlive { lease: LEASE }, outcome)
}

fn revoke(h: &mut Hist, at: u64, outcome: Outcome) -> u64 {
    let complete = (!matches!(outcome, Outcome::Unknown)).then_some(at + 1000);
    h.op(1, (at, complete), Call::LeaseRevoke { lease: LEASE }, outcome)
}

fn absent_at(h: &mut Hist, at: u64) -> u64 {
    h.get(2, (at - 1000, at), "a", None, 0, 3)
}

#[test]
fn leased_key_vanishing_before_its_ttl_without_revoke_is_caught() {
    let mut h = leased_key();
    let read = absent_at(&mut h, 5 * S);
    assert_eq!(
        h.check().lease,
        vec![LeaseViolation::VanishedBeforeExpiry {
            read,
            key: "\"a\"".into(),
            put: 2,
            lease: LEASE,
            deadline: 9 * S,
            observed_by: 5 * S
        }]
    );
}

#[test]
fn leased_key_vanishing_after_its_ttl_is_fine() {
    let mut h = leased_key();
    absent_at(&mut h, 11 * S);
    assert_eq!(h.check().lease, vec![]);
}

#[test]
fn skew_allowance_forgives_an_expiry_slightly_early() {
    let mut h = leased_key();
    absent_at(&mut h, 9 * S + 500_000_000);
    assert_eq!(h.check().lease, vec![]);
}

#[test]
fn leased_key_vanishing_after_a_revoke_is_fine() {
    let mut h = leased_key();
    revoke(&mut h, 3 * S, Outcome::LeaseRevoke { found: true });
    absent_at(&mut h, 4 * S);
    assert_eq!(h.check().lease, vec![]);
}

#[test]
fn revoke_with_unknown_outcome_counts_as_a_revoke() {
    let mut h = leased_key();
    revoke(&mut h, 3 * S, Outcome::Unknown);
    absent_at(&mut h, 4 * S);
    assert_eq!(h.check().lease, vec![]);
}

#[test]
fn keepalive_pushes_the_expiry_back() {
    let mut h = leased_key();
    keepalive(&mut h, 8 * S, Outcome::LeaseKeepAlive { ttl_secs: 10 });
    let read = absent_at(&mut h, 12 * S);
    let v = h.check().lease;
    assert!(
        matches!(v.as_slice(), [LeaseViolation::VanishedBeforeExpiry { read: r, deadline, .. }] if *r == read && *deadline == 17 * S),
        "{v:?}"
    );
}

#[test]
fn keepalive_with_unknown_or_not_found_outcome_extends_nothing() {
    let mut h = leased_key();
    keepalive(&mut h, 8 * S, Outcome::Unknown);
    keepalive(&mut h, 9 * S, Outcome::LeaseKeepAlive { ttl_secs: 0 });
    absent_at(&mut h, 12 * S);
    assert_eq!(h.check().lease, vec![]);
}

#[test]
fn key_deleted_or_rewritten_meanwhile_is_not_judged() {
    let mut deleted = leased_key();
    deleted.del(3, (S, S + 10), "a", 1, 3);
    absent_at(&mut deleted, 5 * S);
    assert_eq!(deleted.check().lease, vec![]);
    let mut racing = leased_key();
    racing.op(3, (4 * S, None), Call::Delete { key: b"a".to_vec() }, Outcome::Unknown);
    absent_at(&mut racing, 5 * S);
    assert_eq!(racing.check().lease, vec![]);
}

#[test]
fn lease_used_after_its_revoke_completed_is_caught() {
    let mut h = leased_key();
    let rev = revoke(&mut h, S, Outcome::LeaseRevoke { found: true });
    let ka = keepalive(&mut h, 2 * S, Outcome::LeaseKeepAlive { ttl_secs: 10 });
    let v = h.check().lease;
    assert_eq!(v, vec![LeaseViolation::UsedAfterRevoke { op: ka, revoke: rev, lease: LEASE }]);
}
