//! The final-leader expectation.

use super::util::Hist;
use crate::checker::{CheckOptions, LivenessViolation, check};
use crate::history::LeaderObservation;

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
