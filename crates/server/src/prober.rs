//! The prober: every member (learners too) probes every other member once per heartbeat and sends its
//! reachability vector to the leader, which keeps it for the datacenter verdicts. One task per probed member,
//! so a far or silent member never delays the probes of the others; tasks follow membership changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::RaftNode;
use meridian_types::NodeId;
use tokio::task::{AbortHandle, JoinSet};

use crate::peer_client::reach_client::ReachClient;
use crate::reach_state::{ReachState, to_wire};

/// Probes and reports until dropped (the caller's task is aborted at shutdown; the probe tasks die with it).
pub async fn run(raft: RaftNode, state: Arc<ReachState>, client: Arc<ReachClient>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = JoinSet::new();
    let mut probing: BTreeMap<NodeId, AbortHandle> = BTreeMap::new();
    let mut report_in_flight: Option<AbortHandle> = None;
    loop {
        ticker.tick().await;
        while tasks.try_join_next().is_some() {}
        let status = raft.status();
        let others: Vec<NodeId> = status.members.keys().copied().filter(|id| *id != status.id).collect();
        state.with_table(|t| t.set_members(others.iter().copied(), state.clock().now_ms()));
        probing.retain(|id, task| {
            let keep = others.contains(id);
            if !keep {
                task.abort();
            }
            keep
        });
        for id in &others {
            if !probing.contains_key(id) {
                let task = tasks.spawn(probe_loop(raft.clone(), state.clone(), client.clone(), *id, interval));
                probing.insert(*id, task);
            }
        }
        // The leader's own vector is read straight from the table; others send theirs, one report at a time.
        let leader = status.leader.filter(|l| *l != status.id).and_then(|l| raft.member(l));
        let idle = report_in_flight.as_ref().is_none_or(AbortHandle::is_finished);
        if let (Some(leader), true) = (leader, idle) {
            let (client, report) = (client.clone(), to_wire(&state.own_report()));
            report_in_flight = Some(tasks.spawn(async move {
                if let Err(e) = client.report(&leader, report, interval * 4).await {
                    tracing::trace!(error = %e, "reachability report not delivered");
                }
            }));
        }
    }
}

/// Probes one member every `interval`, each probe bounded by the link's current timeout.
async fn probe_loop(raft: RaftNode, state: Arc<ReachState>, client: Arc<ReachClient>, id: NodeId, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(record) = raft.member(id) else { continue };
        let timeout = Duration::from_millis(state.with_table(|t| t.probe_timeout_ms(id)));
        let sent_ms = state.clock().now_ms();
        match tokio::time::timeout(timeout, client.probe(&record, timeout)).await {
            Ok(Ok(())) => {
                let now_ms = state.clock().now_ms();
                state.with_table(|t| t.answered(id, sent_ms, now_ms));
            }
            Ok(Err(e)) => tracing::trace!(member = %id, error = %e, "probe failed"),
            Err(_) => tracing::trace!(member = %id, "probe timed out"),
        }
    }
}
