//! Liveness: once the run has healed, leadership settles in the most preferred healthy datacenter, and once
//! the clients have stopped, every lease runs out.

use crate::history::History;

/// A liveness expectation that was not met.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LivenessViolation {
    /// At the end of the run the leader was elsewhere, or there was none.
    #[error("at {at}ns the leader was in {}, expected {expected}", leader.as_deref().unwrap_or("no datacenter"))]
    WrongLeader {
        /// When the runner looked.
        at: u64,
        /// The leader's datacenter, if there was a leader.
        leader: Option<String>,
        /// The datacenter that should lead.
        expected: String,
    },
    /// Leases nobody kept alive were still granted long after they should have expired.
    #[error("at {at}ns leases {leases:?} were still granted, long after the last keep-alive")]
    LeasesNeverExpired {
        /// When the runner looked.
        at: u64,
        /// The leases left.
        leases: Vec<i64>,
    },
}

/// Checks the final leader and lease observations; a history without them has nothing to check.
pub fn check(history: &History) -> Vec<LivenessViolation> {
    let mut violations = Vec::new();
    if let Some(obs) = &history.final_leader
        && obs.leader_dc.as_deref() != Some(obs.expected_dc.as_str())
    {
        violations.push(LivenessViolation::WrongLeader {
            at: obs.at,
            leader: obs.leader_dc.clone(),
            expected: obs.expected_dc.clone(),
        });
    }
    if let Some(obs) = &history.final_leases
        && !obs.outstanding.is_empty()
    {
        violations.push(LivenessViolation::LeasesNeverExpired { at: obs.at, leases: obs.outstanding.clone() });
    }
    violations
}
