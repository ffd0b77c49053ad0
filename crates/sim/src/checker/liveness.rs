//! Liveness: once the run has healed, leadership settles in the most preferred healthy datacenter.

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
}

/// Checks the final leader observation; a history without one has nothing to check.
pub fn check(history: &History) -> Vec<LivenessViolation> {
    let Some(obs) = &history.final_leader else { return Vec::new() };
    if obs.leader_dc.as_deref() == Some(obs.expected_dc.as_str()) {
        return Vec::new();
    }
    vec![LivenessViolation::WrongLeader {
        at: obs.at,
        leader: obs.leader_dc.clone(),
        expected: obs.expected_dc.clone(),
    }]
}
