//! The membership half of the [`RaftNode`] facade: etcd's Cluster API calls, executed here when this member
//! leads, else forwarded once to the leader over the peer transport.

use std::time::Duration;

use meridian_types::NodeId;

use crate::error::{Error, Result};
use crate::membership::{self, MembershipRequest};
use crate::node::RaftNode;
use crate::types::MemberRecord;

/// How long a forwarded membership request may take, including the joint change.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

impl RaftNode {
    /// Add member `id` as a learner. Returns once the membership naming it is committed; the
    /// member's process need not be running.
    pub async fn add_learner(&self, id: NodeId, member: MemberRecord) -> Result<()> {
        self.membership(MembershipRequest::AddLearner { id: id.0, member }).await
    }

    /// Add member `id` as a voter at once (etcd's MemberAdd without `isLearner`).
    pub async fn add_voter(&self, id: NodeId, member: MemberRecord) -> Result<()> {
        self.membership(MembershipRequest::AddVoter { id: id.0, member }).await
    }

    /// Promote learner `id` to voter; refused with `LearnerNotReady` until it has caught up.
    pub async fn promote_learner(&self, id: NodeId) -> Result<()> {
        self.membership(MembershipRequest::Promote { id: id.0 }).await
    }

    /// Remove member `id` (voter or learner) from the cluster.
    pub async fn remove_member(&self, id: NodeId) -> Result<()> {
        self.membership(MembershipRequest::Remove { id: id.0 }).await
    }

    /// Change the peer URL of member `id`.
    pub async fn update_member(&self, id: NodeId, peer_url: String) -> Result<()> {
        self.membership(MembershipRequest::Update { id: id.0, peer_url }).await
    }

    /// Record this member's own name, dc, zone and client URL in the membership (its peer URL
    /// stays as the cluster knows it). A no-op when already recorded.
    pub async fn publish_self(&self, member: MemberRecord) -> Result<()> {
        self.membership(MembershipRequest::Publish { id: self.id().0, member }).await
    }

    /// Execute on the leader: here when this member leads, else forwarded once to the leader.
    async fn membership(&self, req: MembershipRequest) -> Result<()> {
        self.check_running()?;
        match membership::execute_local(&self.inner.raft, &req).await {
            Err(Error::NotLeader { leader: Some(leader) }) if leader != self.id() => {
                self.forward_membership(leader, &req).await
            }
            other => other,
        }
    }

    async fn forward_membership(&self, leader: NodeId, req: &MembershipRequest) -> Result<()> {
        let Some(member) = self.status().members.get(&leader).cloned() else {
            return Err(Error::NotLeader { leader: Some(leader) });
        };
        let payload = crate::transport::wire::membership_request(req)?;
        let sent = tokio::time::timeout(FORWARD_TIMEOUT, self.inner.transport.send(leader, &member, payload)).await;
        let bytes = match sent {
            Err(_) => return Err(Error::Unavailable(format!("membership request to leader {leader} timed out"))),
            // The leader is known but unreachable: let the client retry elsewhere with the hint.
            Ok(Err(_)) => return Err(Error::NotLeader { leader: Some(leader) }),
            Ok(Ok(b)) => b,
        };
        crate::transport::wire::membership_reply(&bytes)
    }
}
