//! The outcome of checking a history: the linearizability verdict and the violations of every other check.

use std::fmt;

use super::auth::AuthViolation;
use super::discovery::{DiscoveryStats, DiscoveryViolation};
use super::groups::GroupViolation;
use super::lease::LeaseViolation;
use super::linearizable::KeyFailure;
use super::liveness::LivenessViolation;
use super::locks::LockViolation;
use super::revisions::RevisionViolation;
use super::serializable::SerializableViolation;
use super::verdicts::VerdictViolation;
use super::watch::WatchViolation;
use super::wellformed::MalformedOp;

/// How many violations of one check the human summary lists before eliding the rest.
const SHOWN_PER_CHECK: usize = 10;

/// A verdict that may be inconclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckResult {
    /// The check passed.
    Ok,
    /// The check could not decide (the search ran out of steps).
    Unknown,
    /// The check found a violation.
    Invalid,
}

/// Everything [`check`](super::check) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Whether the key-value operations are linearizable.
    pub linearizability: CheckResult,
    /// Why, for each key that is not.
    pub linearizability_failures: Vec<KeyFailure>,
    /// Keys whose linearizability search ran out of steps.
    pub unknown_keys: Vec<Vec<u8>>,
    /// Operations that are not well formed (duplicate id, completion before invocation, mismatched outcome).
    pub malformed: Vec<MalformedOp>,
    /// Revision invariants broken.
    pub revisions: Vec<RevisionViolation>,
    /// Serializable reads that do not show the store as of their header revision.
    pub serializable: Vec<SerializableViolation>,
    /// Watch stream invariants broken.
    pub watch: Vec<WatchViolation>,
    /// Lease invariants broken.
    pub lease: Vec<LeaseViolation>,
    /// Permission invariants broken.
    pub auth: Vec<AuthViolation>,
    /// Datacenter verdict invariants broken (quorum behind `down`, verdicts following the faults).
    pub verdicts: Vec<VerdictViolation>,
    /// Failover-group invariants broken (one active datacenter per token, tokens never going back).
    pub groups: Vec<GroupViolation>,
    /// Lock invariants broken (two holders at once, tokens not growing, fenced writes interleaving).
    pub locks: Vec<LockViolation>,
    /// Discovery invariants broken (an unhealthy or unregistered instance answered, an answer that is not the
    /// ranking of the committed registry, a catalog or answer staler than its window, a lost write).
    pub discovery: Vec<DiscoveryViolation>,
    /// What the discovery check judged and measured.
    pub discovery_stats: DiscoveryStats,
    /// Liveness expectations missed.
    pub liveness: Vec<LivenessViolation>,
    /// Operations the linearizability search covered.
    pub ops_checked: usize,
    /// Keys the linearizability search covered.
    pub keys_checked: usize,
    /// Serializable reads that returned, each checked against its header revision.
    pub serializable_checked: usize,
    /// Watch logs checked.
    pub watches_checked: usize,
}

impl Report {
    /// Violations found by the checks other than linearizability.
    pub fn violation_count(&self) -> usize {
        self.malformed.len()
            + self.revisions.len()
            + self.serializable.len()
            + self.watch.len()
            + self.lease.len()
            + self.auth.len()
            + self.verdicts.len()
            + self.groups.len()
            + self.locks.len()
            + self.discovery.len()
            + self.liveness.len()
    }

    /// Every check passed conclusively.
    pub fn is_valid(&self) -> bool {
        self.linearizability == CheckResult::Ok && self.violation_count() == 0
    }

    /// Nothing was found wrong, but the linearizability search could not finish for some key.
    pub fn is_unknown(&self) -> bool {
        self.linearizability == CheckResult::Unknown && self.violation_count() == 0
    }

    /// Something was found wrong.
    pub fn is_invalid(&self) -> bool {
        !self.is_valid() && !self.is_unknown()
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckResult::Ok => "ok",
            CheckResult::Unknown => "unknown",
            CheckResult::Invalid => "INVALID",
        })
    }
}

fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, title: &str, items: &[T]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "{title}: {} violation(s)", items.len())?;
    for item in items.iter().take(SHOWN_PER_CHECK) {
        writeln!(f, "  - {item}")?;
    }
    if items.len() > SHOWN_PER_CHECK {
        writeln!(f, "  ... and {} more", items.len() - SHOWN_PER_CHECK)?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_valid() {
            "VALID"
        } else if self.is_unknown() {
            "UNKNOWN"
        } else {
            "INVALID"
        };
        writeln!(
            f,
            "history {verdict}: linearizability {} ({} ops over {} keys), {} watch(es), {} other violation(s)",
            self.linearizability,
            self.ops_checked,
            self.keys_checked,
            self.watches_checked,
            self.violation_count()
        )?;
        let d = &self.discovery_stats;
        if d.answers > 0 {
            writeln!(
                f,
                "discovery: {} answers ({} judged, {} not covered, {} non-empty); catalog lag over {} writes: p50 {} ms, \
                 p99 {} ms, max {} ms",
                d.answers, d.judged, d.unjudged, d.nonempty, d.lags_measured, d.lag_p50_ms, d.lag_p99_ms, d.lag_max_ms
            )?;
        }
        for failure in self.linearizability_failures.iter().take(SHOWN_PER_CHECK) {
            write!(f, "{failure}")?;
        }
        if !self.unknown_keys.is_empty() {
            let keys: Vec<_> = self.unknown_keys.iter().map(|k| crate::display::show(k)).collect();
            writeln!(f, "step limit reached for key(s): {}", keys.join(", "))?;
        }
        list(f, "malformed history", &self.malformed)?;
        list(f, "revisions", &self.revisions)?;
        list(f, "serializable reads", &self.serializable)?;
        list(f, "watch", &self.watch)?;
        list(f, "lease", &self.lease)?;
        list(f, "permissions", &self.auth)?;
        list(f, "verdicts", &self.verdicts)?;
        list(f, "failover groups", &self.groups)?;
        list(f, "locks", &self.locks)?;
        list(f, "discovery", &self.discovery)?;
        list(f, "liveness", &self.liveness)
    }
}
