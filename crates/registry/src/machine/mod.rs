//! The check state machine. A [`CheckState`] is the check's status (passing, warning or critical) carrying its
//! counters; every transition consumes it and returns a [`Step`]: the new state, the [`Change`] to publish
//! through the Raft log if any, and whether the instance should be deregistered.
//!
//! Rules (Consul's, plus damping):
//! - **Start**: a new check starts in its definition's initial status, critical unless the registration gave
//!   one (Consul's rule), so an instance takes no traffic before its check passed once. That status is written
//!   with the registration ([`crate::Registration::initial_records`]), not published as a change.
//! - **Thresholds**: pass and warn results count as successes, fail results as failures; each resets the other
//!   count. After `success_before_passing` successes in a row the status becomes that of the latest success
//!   (passing or warning); after `failures_before_critical` failures it becomes critical, after
//!   `failures_before_warning` (fewer) warning. A result that reaches no threshold changes nothing, its output
//!   included. TTL checks ignore thresholds: a report sets the status at once.
//! - **TTL**: [`CheckState::tick`] turns a TTL check critical once no report came for `ttl` (its status then
//!   dates from the deadline, not from the tick).
//! - **Deregistration**: `tick` says `deregister` once the check has been critical for
//!   `deregister_critical_after`, and keeps saying it until the server removes the instance.
//! - **Damping**: see [`FlapDamping`]; improvements may be held, worsenings never are.
//! - **Only status changes are published**; a new output with the same status stays local (Consul syncs
//!   output-only changes every few minutes; we do not write them at all).

mod flap;

use std::time::Duration;

pub use flap::FlapDamping;
use flap::FlapHistory;

use crate::check::{CheckDef, MAX_OUTPUT_MAX, Outcome, Thresholds};
use crate::error::truncate;
use crate::record::CheckRecord;
use crate::status::Status;
use crate::time::{Timestamp, format_duration};

/// What the machine needs of a check's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// The consecutive-result thresholds (all 1 for a TTL check).
    pub thresholds: Thresholds,
    /// The TTL of a TTL check.
    pub ttl: Option<Duration>,
    /// `deregister_critical_service_after`.
    pub deregister_after: Option<Duration>,
    /// Flap damping, `None` to publish every change at once (always for a TTL check).
    pub damping: Option<FlapDamping>,
}

impl MachineConfig {
    /// The configuration of `def`'s machine, with the damping rule the server uses for probed checks. A TTL
    /// check takes neither thresholds nor damping: each report is the instance's own word on its status, set at
    /// once as Consul sets it. Damping one would also strand it: an improvement held back is lost when the check
    /// moves to another runner, and unlike a probe, nothing reports it again until the instance does.
    pub fn of(def: &CheckDef, damping: Option<FlapDamping>) -> MachineConfig {
        let ttl = def.kind.ttl();
        MachineConfig {
            thresholds: if ttl.is_some() { Thresholds::default() } else { def.thresholds },
            ttl,
            deregister_after: def.deregister_critical_after,
            damping: if ttl.is_some() { None } else { damping },
        }
    }
}

/// One result of a probe, or one report of a TTL check, with its output and when it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A passing result.
    Pass(Report),
    /// A warning result (HTTP 429, a TTL `warn`).
    Warn(Report),
    /// A failing result.
    Fail(Report),
}

/// The text and time of an observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The output shown with the check (cut to 64 KiB).
    pub output: String,
    /// When it was observed.
    pub now: Timestamp,
}

impl Observation {
    /// The observation of a judged probe result ([`crate::check::HttpCheck::judge`] and the like).
    pub fn new(outcome: Outcome, output: impl Into<String>, now: Timestamp) -> Observation {
        let report = Report { output: output.into(), now };
        match outcome {
            Outcome::Pass => Observation::Pass(report),
            Outcome::Warn => Observation::Warn(report),
            Outcome::Fail => Observation::Fail(report),
        }
    }

    fn into_parts(self) -> (Outcome, Report) {
        match self {
            Observation::Pass(r) => (Outcome::Pass, r),
            Observation::Warn(r) => (Outcome::Warn, r),
            Observation::Fail(r) => (Outcome::Fail, r),
        }
    }
}

/// A status change to publish (write as the check's [`CheckRecord`] through the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The status published before.
    pub from: Status,
    /// The new status.
    pub to: Status,
    /// The output of the result that caused it.
    pub output: String,
    /// When the check entered the new status.
    pub since: Timestamp,
}

impl Change {
    /// The record to store.
    pub fn record(&self) -> CheckRecord {
        CheckRecord { status: self.to, output: self.output.clone(), since: self.since }
    }
}

/// The result of a transition.
#[derive(Debug)]
#[must_use]
pub struct Step {
    /// The machine's new state.
    pub state: CheckState,
    /// The change to publish, if any.
    pub publish: Option<Change>,
    /// The check has been critical for its `deregister_critical_after`: remove the instance.
    pub deregister: bool,
}

/// A check's counters and history, carried by every status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    successes: u32,
    failures: u32,
    since: Timestamp,
    output: String,
    published: Status,
    last_report: Timestamp,
    flaps: FlapHistory,
}

/// A check's state: its current status, as judged from its results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckState {
    /// Passing.
    Passing(Track),
    /// Warning.
    Warning(Track),
    /// Critical.
    Critical(Track),
}

mod transitions;

#[cfg(test)]
mod tests;
