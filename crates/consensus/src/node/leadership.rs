//! What the leader knows of its followers, for the server's placement driver and status views, and the one
//! openraft action placement needs: hand leadership over without waiting.

use std::collections::BTreeMap;

use meridian_proto::etcdserverpb::AlarmType;
use meridian_types::{DcName, NodeId};
use openraft::async_runtime::WatchReceiver;
use openraft::{Instant as _, ServerState};

use crate::error::Result;
use crate::node::{RaftNode, fatal};
use crate::placement::{MemberView, Observation};

impl RaftNode {
    /// The placement policy's input at `now_ms` (ms on the caller's clock), or `None` when this member does not
    /// lead: every member of the effective membership with its datacenter, whether it votes, when it last
    /// acknowledged this leader and how far its log matches.
    pub fn placement_observation(&self, now_ms: u64) -> Option<Observation> {
        // Read before borrowing the metrics, so no lock is held across the other.
        let full: Vec<u64> =
            self.inner.kv.read().alarms().get(AlarmType::Nospace).iter().map(|a| a.member_id).collect();
        let rx = self.inner.raft.metrics();
        let m = rx.borrow_watched();
        if m.state != ServerState::Leader {
            return None;
        }
        let membership = m.membership_config.membership();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let acked = m.heartbeat.as_ref().and_then(|h| h.get(id).cloned().flatten());
                // openraft's instants come from its runtime clock; turn "acked this long ago" into a
                // timestamp on the caller's epoch.
                let last_ack_ms = acked.map(|t| {
                    let age = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                    now_ms.saturating_sub(age)
                });
                let matched = m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|l| l.index());
                MemberView {
                    id: NodeId(*id),
                    dc: DcName(node.dc.clone()),
                    voter: membership.voter_ids().any(|v| v == *id),
                    last_ack_ms,
                    matched,
                    no_space: full.contains(id),
                }
            })
            .collect();
        Some(Observation { now_ms, leader: NodeId(m.id), leader_last_index: m.last_log_index.unwrap_or(0), members })
    }

    /// Per member, the highest log index the leader knows it holds (`None`: nothing acknowledged yet); empty
    /// unless this member leads.
    pub fn replication_progress(&self) -> BTreeMap<u64, Option<u64>> {
        let rx = self.inner.raft.metrics();
        let m = rx.borrow_watched();
        m.replication
            .as_ref()
            .map(|r| r.iter().map(|(id, log)| (*id, log.as_ref().map(|l| l.index()))).collect())
            .unwrap_or_default()
    }

    /// Asks openraft to hand leadership to `to` and returns at once (placement's move; `move_leader` is the
    /// client API that waits for the outcome). Fails only when the Raft node stopped.
    pub async fn request_transfer(&self, to: NodeId) -> Result<()> {
        self.inner.raft.trigger().transfer_leader(to.0).await.map_err(fatal)
    }
}
