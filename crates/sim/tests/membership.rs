//! A whole simulated run whose seed takes the joiner through the membership sequence (add as a
//! learner, promote, remove) under the other faults, with a short fault phase.

use std::time::Duration;

use meridian_sim::faults::{FaultKind, Tally};
use meridian_sim::runner::{self, RunOptions};

/// A seed known to change the membership and to complete all three steps.
const SEED: u64 = 6;

#[test]
fn membership_sequence_completes_and_the_history_is_valid() {
    let mut opts = RunOptions::new(SEED);
    opts.fault_phase = Duration::from_secs(6);
    let out = runner::run(&opts);
    assert_eq!(out.error, None, "simulation error");
    assert_eq!(
        out.faults.get(&FaultKind::Membership),
        Some(&Tally { scheduled: 3, took_effect: 3 }),
        "faults: {:?}",
        out.faults
    );
    assert!(!out.report.is_invalid(), "{}", out.report);
}
