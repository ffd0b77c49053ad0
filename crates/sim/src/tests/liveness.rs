//! The liveness expectations: the final leader, lease expiry, fault effects, failover bounds and the planned move.

use super::util::Hist;
use crate::checker::{CheckOptions, LivenessViolation, check};
use crate::history::{FailoverObservation, FaultEffect, LeaderObservation, LeaseObservation, PlannedTransfer};

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

#[test]
fn a_kind_of_fault_that_never_took_effect_is_caught() {
    let mut h = with_leader(Some("dc-a"));
    h.h.fault_effects = vec![
        FaultEffect { kind: "CrashRestart".into(), scheduled: 3, took_effect: 1 },
        FaultEffect { kind: "LeaderTransfer".into(), scheduled: 2, took_effect: 0 },
        FaultEffect { kind: "Delay".into(), scheduled: 0, took_effect: 0 },
    ];
    assert_eq!(
        h.check().liveness,
        vec![LivenessViolation::FaultNeverTookEffect { kind: "LeaderTransfer".into(), scheduled: 2 }]
    );
}

#[test]
fn a_failover_beyond_its_bound_is_caught_and_one_healed_inside_it_is_not_judged() {
    let failover = |elected_at: Option<u64>, observed_until: u64| FailoverObservation {
        kind: "IsolateDc".into(),
        lost_at: 1_000,
        elected_at,
        bound: 2_000,
        observed_until,
    };
    let mut h = with_leader(Some("dc-a"));
    // Elected in time; healed before the bound with nobody elected yet.
    h.h.failovers = vec![failover(Some(2_500), 2_500), failover(None, 2_900)];
    assert!(h.check().is_valid());
    // Elected too late; and a fault that lasted past the bound with nobody elected.
    h.h.failovers = vec![failover(Some(3_500), 3_500), failover(None, 4_000)];
    assert_eq!(
        h.check().liveness,
        vec![
            LivenessViolation::SlowFailover { kind: "IsolateDc".into(), lost_at: 1_000, waited: 2_500, bound: 2_000 },
            LivenessViolation::SlowFailover { kind: "IsolateDc".into(), lost_at: 1_000, waited: 3_000, bound: 2_000 },
        ]
    );
}

#[test]
fn a_planned_transfer_must_move_the_leader_and_cost_its_writers_nothing() {
    let mut h = with_leader(Some("dc-a"));
    h.put(200, (10, 20), "k0", "c200-0", 5);
    h.put(1, (10, 20), "k1", "c1-0", 6);
    h.h.planned_transfer = Some(PlannedTransfer { asked_at: 12, moved: true, writers: vec![200, 201] });
    assert!(h.check().is_valid());

    // Another client's failure is not the move's doing; a writer's is.
    h.put_failed(1, (30, 40), "k1", "c1-1");
    let lost = h.put_unknown(201, 31, "k0", "c201-0");
    let refused = h.put_failed(200, (32, 41), "k0", "c200-1");
    h.h.planned_transfer.as_mut().unwrap().moved = false;
    assert_eq!(
        h.check().liveness,
        vec![
            LivenessViolation::PlannedTransferNotMade { asked_at: 12 },
            LivenessViolation::PlannedTransferCostOps { ops: vec![lost, refused] },
        ]
    );
}
