//! Whole-cluster simulations as tests: a seed replays byte for byte, faulty runs produce valid
//! histories, and a planted bug (followers serving "linearizable" reads from local state) is caught.

use std::time::Duration;

use meridian_server::member::PlantedBug;
use meridian_sim::runner::{self, RunOptions};

fn short(seed: u64) -> RunOptions {
    let mut opts = RunOptions::new(seed);
    opts.fault_phase = Duration::from_secs(6);
    opts
}

#[test]
fn replaying_a_seed_gives_the_same_history_byte_for_byte() {
    let first = runner::run(&short(11));
    let second = runner::run(&short(11));
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(first.history.ops.len() > 50, "the workload ran: {} ops", first.history.ops.len());
    assert_eq!(first.history.to_canonical_bytes(), second.history.to_canonical_bytes());
    assert_eq!(first.faults, second.faults);
    let other = runner::run(&short(12));
    assert_ne!(first.history.fingerprint(), other.history.fingerprint(), "another seed, another run");
}

#[test]
fn runs_under_faults_produce_valid_histories() {
    for seed in [1, 2] {
        let out = runner::run(&short(seed));
        assert!(out.error.is_none(), "seed {seed}: {:?}", out.error);
        assert!(out.report.is_valid(), "seed {seed}:\n{}", out.report);
        assert!(out.faults.values().sum::<u64>() > 0, "seed {seed} injected faults");
        let leader = out.history.final_leader.as_ref().expect("liveness observed");
        assert_eq!(leader.leader_dc.as_deref(), Some("dc-a"), "seed {seed}: the leader settled in dc-a");
    }
}

#[test]
fn a_planted_stale_read_bug_is_caught() {
    let caught = (100..110).find(|seed| {
        let mut opts = short(*seed);
        opts.planted_bug = PlantedBug::StaleLinearizableReads;
        runner::run(&opts).report.is_invalid()
    });
    assert!(caught.is_some(), "stale follower reads went unnoticed for 10 seeds");
}
