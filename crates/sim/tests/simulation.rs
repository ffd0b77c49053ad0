//! Whole-cluster simulations as tests: faulty runs produce valid histories, a seed replays byte for byte,
//! and seven planted bugs (followers serving "linearizable" reads from local state; serializable reads one
//! revision behind their header; a lease clock that never hears of grants; a restarted leader resuming its
//! term without an election; followers forwarding writes without their caller; a Lock service that does not
//! wait for the holder's key to go; a discovery catalog reading critical checks as passing) are caught. The
//! release-mode run of hundreds of seeds is in `scripts/test`.

use std::time::Duration;

use meridian_server::planted::PlantedBug;
use meridian_sim::auth_ops::AuthOutcome;
use meridian_sim::checker::{LivenessViolation, Report};
use meridian_sim::history::LockOutcome;
use meridian_sim::runner::{self, RunOptions};

fn short(seed: u64) -> RunOptions {
    let mut opts = RunOptions::new(seed);
    opts.fault_phase = Duration::from_secs(5);
    opts
}

#[test]
fn faulty_runs_are_valid_and_a_seed_replays_byte_for_byte() {
    let first = runner::run(&short(2));
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(first.report.is_valid(), "{}", first.report);
    assert!(first.history.ops.len() > 50, "the workload ran: {} ops", first.history.ops.len());
    assert!(first.report.serializable_checked > 0, "serializable reads were answered and checked");
    assert!(first.faults.values().map(|t| t.took_effect).sum::<u64>() > 0, "faults took effect");
    let planned = first.history.planned_transfer.as_ref().expect("the planned move ran");
    assert!(planned.moved, "the planned move took effect");
    let auth = first.history.auth.as_ref().expect("the auth workload ran");
    assert!(auth.enabled_at.is_some(), "authentication was enabled");
    let refused = auth.ops.iter().filter(|op| !op.permitted() && matches!(op.outcome, AuthOutcome::Refused { .. }));
    assert!(refused.count() > 5, "the limited user was refused outside its prefix");
    let served = auth.ops.iter().filter(|op| op.permitted() && matches!(op.outcome, AuthOutcome::Succeeded { .. }));
    assert!(served.count() > 5, "the limited user was served inside its prefix");
    let scan = auth.final_scan.as_ref().expect("the store was scanned at the end");
    assert!(scan.leaked.is_empty() && scan.sentinel.is_some(), "{scan:?}");
    let locks = first.history.locks.as_ref().expect("the lock workload ran");
    let granted = locks.ops.iter().filter(|op| matches!(op.outcome, LockOutcome::Granted { .. }));
    assert!(granted.count() > 2, "the lock was granted again and again");
    assert!(!locks.watches.is_empty(), "the lock's keys were watched");
    let leader = first.history.final_leader.as_ref().expect("liveness observed");
    assert_eq!(leader.leader_dc.as_deref(), Some("dc-a"), "the leader settled in dc-a");

    let again = runner::run(&short(2));
    assert_eq!(first.history.to_canonical_bytes(), again.history.to_canonical_bytes());
    assert_eq!(first.faults, again.faults);

    let other = runner::run(&short(3));
    assert!(other.report.is_valid(), "{}", other.report);
    assert_ne!(first.history.fingerprint(), other.history.fingerprint(), "another seed, another run");
}

/// Whether one of seeds 100..110, run with `bug` planted, yields a report that `caught` accepts.
fn caught_within_ten_seeds(bug: PlantedBug, caught: impl Fn(&Report) -> bool) -> bool {
    (100..110).any(|seed| {
        let mut opts = short(seed);
        opts.planted_bug = bug;
        caught(&runner::run(&opts).report)
    })
}

#[test]
fn a_planted_stale_read_bug_is_caught() {
    let caught = caught_within_ten_seeds(PlantedBug::StaleLinearizableReads, Report::is_invalid);
    assert!(caught, "stale follower reads went unnoticed for 10 seeds");
}

#[test]
fn a_planted_serializable_read_bug_is_caught() {
    // Only the serializable check can see it: the other checks ignore serializable reads' staleness.
    let caught = caught_within_ten_seeds(PlantedBug::SerializableReadsOneBehind, |report| {
        report.is_invalid() && !report.serializable.is_empty()
    });
    assert!(caught, "serializable reads behind their header went unnoticed for 10 seeds");
}

#[test]
fn a_planted_bug_that_keeps_leases_alive_is_caught() {
    // Only the lease phase at the end can see it: nothing expires early, and nothing is used after a revoke.
    let caught = caught_within_ten_seeds(PlantedBug::UntimedLeaseGrants, |report| {
        report.is_invalid() && report.liveness.iter().any(|v| matches!(v, LivenessViolation::LeasesNeverExpired { .. }))
    });
    assert!(caught, "leases that never expire went unnoticed for 10 seeds");
}

#[test]
fn a_planted_resumed_leader_is_caught() {
    // A leader that resumes its term after a restart reuses log ids for entries it lost while followers
    // had acknowledged them, and hands out read indexes below acknowledged writes. It needs a crash of the
    // leader inside the fault phase, so this one runs the full default phase, and over twenty seeds: about
    // three in ten catch it.
    let caught = (100..120).any(|seed| {
        let mut opts = RunOptions::new(seed);
        opts.planted_bug = PlantedBug::ResumedLeaderSkipsElection;
        runner::run(&opts).report.is_invalid()
    });
    assert!(caught, "a leader resuming its term after a restart went unnoticed for 20 seeds");
}

#[test]
fn a_planted_bug_that_forwards_writes_without_their_caller_is_caught() {
    // The permission check names it: the limited user's writes outside its prefix, sent to followers, succeed.
    let caught = caught_within_ten_seeds(PlantedBug::ForwardedWritesSkipAuth, |report| {
        report.is_invalid() && !report.auth.is_empty()
    });
    assert!(caught, "followers forwarding writes without their caller went unnoticed for 10 seeds");
}

#[test]
fn a_planted_lock_that_skips_the_wait_is_caught() {
    // The lock checker names it: a grant answered while the previous holder's key still existed.
    let caught =
        caught_within_ten_seeds(PlantedBug::LockSkipsWait, |report| report.is_invalid() && !report.locks.is_empty());
    assert!(caught, "a Lock service granting without waiting went unnoticed for 10 seeds");
}

#[test]
fn a_planted_catalog_that_ignores_critical_checks_is_caught() {
    // The discovery checker names it: an answer holds an instance whose committed check was critical.
    let caught = caught_within_ten_seeds(PlantedBug::DiscoveryIgnoresCritical, |report| {
        report.is_invalid() && !report.discovery.is_empty()
    });
    assert!(caught, "a catalog reading critical checks as passing went unnoticed for 10 seeds");
}
