//! The final-leader and lease-expiry expectations.

use super::util::Hist;
use crate::checker::{CheckOptions, LivenessViolation, check};
use crate::history::{LeaderObservation, LeaseObservation};

fn with_leader(leader: Option<&str>) -> Hist {
    let mut h = Hist::new();
    h.h.final_leader =
        Some(LeaderObservation { at: 99, leader_dc: leader.map(str::to_owned), expected_dc: "dc-a".into() });
    h
}

#[test]
fn leader_in_the_expected_datacenter_passes() {
    assert!(with_leader(Some("dc-a")).check().is_valid());
}

#[test]
fn leader_elsewhere_or_missing_is_caught() {
    assert_eq!(
        with_leader(Some("dc-b")).check().liveness,
        vec![LivenessViolation::WrongLeader { at: 99, leader: Some("dc-b".into()), expected: "dc-a".into() }]
    );
    assert_eq!(with_leader(None).check().liveness.len(), 1);
}

#[test]
fn liveness_can_be_switched_off() {
    let h = with_leader(Some("dc-b"));
    assert!(check(&h.h, &CheckOptions { check_liveness: false, ..CheckOptions::default() }).is_valid());
}

#[test]
fn leases_left_after_the_lease_phase_are_caught() {
    let mut h = with_leader(Some("dc-a"));
    h.h.final_leases = Some(LeaseObservation { at: 120, outstanding: Vec::new() });
    assert!(h.check().is_valid(), "every lease expired");
    h.h.final_leases = Some(LeaseObservation { at: 120, outstanding: vec![7, 9] });
    assert_eq!(h.check().liveness, vec![LivenessViolation::LeasesNeverExpired { at: 120, leases: vec![7, 9] }]);
}
