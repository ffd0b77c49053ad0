//! Liveness: once the run has healed, leadership settles in the most preferred healthy datacenter, and once
//! the clients have stopped, every lease runs out; after a fault takes the leader from the majority, a
//! successor is established within the design's bound; a planned leadership move costs no client operation; and
//! every kind of fault the run scheduled took effect at least once (a nemesis whose faults change nothing
//! tests nothing).

use crate::history::{History, Outcome};

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
    /// A kind of fault was scheduled but never changed anything.
    #[error("{kind} was scheduled {scheduled} times and never took effect")]
    FaultNeverTookEffect {
        /// The kind.
        kind: String,
        /// How often it was scheduled.
        scheduled: u64,
    },
    /// The majority took longer than the bound to follow a new leader.
    #[error("after {kind} at {lost_at}ns no successor for {waited}ns (bound {bound}ns)")]
    SlowFailover {
        /// The fault.
        kind: String,
        /// When the leader was lost.
        lost_at: u64,
        /// How long the majority went without a leader (until a successor, or until the runner stopped looking).
        waited: u64,
        /// The bound.
        bound: u64,
    },
    /// The planned leadership move did not happen.
    #[error("the planned leadership move asked at {asked_at}ns did not take effect")]
    PlannedTransferNotMade {
        /// When it was asked.
        asked_at: u64,
    },
    /// Operations of the writers of the planned move failed or ended with an unknown outcome.
    #[error("the planned leadership move cost client operations {ops:?}")]
    PlannedTransferCostOps {
        /// Their ids.
        ops: Vec<u64>,
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
    for effect in history.fault_effects.iter().filter(|e| e.scheduled > 0 && e.took_effect == 0) {
        violations
            .push(LivenessViolation::FaultNeverTookEffect { kind: effect.kind.clone(), scheduled: effect.scheduled });
    }
    for f in &history.failovers {
        let waited = f.elected_at.unwrap_or(f.observed_until).saturating_sub(f.lost_at);
        // Unjudged when the fault was healed before the bound ran out and nobody had been elected yet.
        if waited > f.bound {
            violations.push(LivenessViolation::SlowFailover {
                kind: f.kind.clone(),
                lost_at: f.lost_at,
                waited,
                bound: f.bound,
            });
        }
    }
    if let Some(t) = &history.planned_transfer {
        if !t.moved {
            violations.push(LivenessViolation::PlannedTransferNotMade { asked_at: t.asked_at });
        }
        let ops: Vec<u64> = history
            .ops
            .iter()
            .filter(|op| {
                t.writers.contains(&op.client) && matches!(op.outcome, Outcome::Unknown | Outcome::Failed { .. })
            })
            .map(|op| op.id)
            .collect();
        if !ops.is_empty() {
            violations.push(LivenessViolation::PlannedTransferCostOps { ops });
        }
    }
    violations
}
