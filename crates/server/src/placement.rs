//! Leader placement driver: on the leader, every heartbeat, feeds openraft's view of the followers
//! (last acknowledgement, matched index) into the pure policy `meridian_consensus::placement` and
//! carries out its decision with openraft's `transfer_leader`. The latest reason ("leader in dc-a:
//! most preferred healthy DC", "waiting for dc-a to be stable ...") is kept in a [`PlacementHandle`]
//! for Maintenance.Status and the admin API.

use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::RaftNode;
use meridian_consensus::placement::{Decision, Placement, PlacementConfig};
use meridian_types::PlacementPolicy;
use parking_lot::RwLock;

use crate::clock::Clock;

/// A follower whose matched index trails the leader's last index by more than this is not caught
/// up enough to take leadership (a transfer to it would stall writes while it catches up).
pub const MAX_TRANSFER_LAG: u64 = 500;

/// Shared, cheap-to-clone view of the placement driver's latest reason.
#[derive(Clone, Debug)]
pub struct PlacementHandle {
    reason: Arc<RwLock<String>>,
}

impl Default for PlacementHandle {
    fn default() -> Self {
        PlacementHandle { reason: Arc::new(RwLock::new("placement not evaluated yet".to_owned())) }
    }
}

impl PlacementHandle {
    /// A handle with no decision yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Why the leader is where it is (on a follower: who leads, as far as it knows).
    pub fn reason(&self) -> String {
        self.reason.read().clone()
    }

    /// The shared slot itself, for status code that wants to hold it.
    pub fn slot(&self) -> Arc<RwLock<String>> {
        self.reason.clone()
    }

    fn set(&self, reason: String) {
        let mut slot = self.reason.write();
        if *slot != reason {
            tracing::info!(%reason, "leader placement");
            *slot = reason;
        }
    }
}

/// The policy's tunables for given Raft timings: a follower is healthy when it acknowledged within
/// the maximum election timeout; a transfer that has not happened is retried after three of them.
pub fn placement_config(policy: &PlacementPolicy, election_max_ms: u64) -> PlacementConfig {
    PlacementConfig {
        leader_preference: policy.leader_preference.clone(),
        failback_hold_ms: policy.failback_hold_ms,
        healthy_ack_ms: election_max_ms,
        max_lag: MAX_TRANSFER_LAG,
        cooldown_ms: election_max_ms.saturating_mul(3),
    }
}

/// Runs the driver until the Raft node shuts down. Ticks every `heartbeat`; the state machine is
/// created afresh each time this member becomes leader, so a new leader always waits one failback
/// hold before moving leadership.
pub async fn run(raft: RaftNode, config: PlacementConfig, heartbeat: Duration, handle: PlacementHandle, clock: Clock) {
    let mut ticker = tokio::time::interval(heartbeat.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut placement: Option<Placement> = None;
    loop {
        ticker.tick().await;
        let now_ms = clock.now_ms();
        let Some(obs) = raft.placement_observation(now_ms) else {
            placement = None;
            handle.set(follower_reason(&raft));
            continue;
        };
        let decision = placement.get_or_insert_with(|| Placement::new(config.clone())).tick(&obs);
        if let Decision::Transfer { to, .. } = &decision
            && let Err(e) = raft.request_transfer(*to).await
        {
            tracing::debug!(error = %e, "raft stopped; placement driver exits");
            return;
        }
        handle.set(decision.reason().to_owned());
    }
}

fn follower_reason(raft: &RaftNode) -> String {
    let status = raft.status();
    match status.leader {
        Some(id) => match status.members.get(&id) {
            Some(m) => format!("leader {} in {} (decided by the leader)", m.name, m.dc),
            None => format!("leader {id} (decided by the leader)"),
        },
        None => "no leader".to_owned(),
    }
}
