//! What a follower may do once it knows its leader's process is gone: stop honouring that leader's lease, and
//! campaign at once instead of waiting out the election timeout. Who decides that the leader is gone (and
//! when each survivor campaigns, see [`crate::succession`]) is the server's business; this is the Raft side.
//!
//! A follower refuses to vote while the lease it granted its leader runs (`election_timeout_max` after the
//! last heartbeat), so that a single confused member cannot depose a healthy leader. A dead leader needs no
//! protection, and with the ReadIndex read policy nothing else relies on the lease: every linearizable read is
//! confirmed by a quorum round trip at the leader's term, so a new leader elected early cannot make an old one
//! serve a stale read. With the lease read policy the old leader serves reads on the strength of exactly that
//! lease, so it is honoured to the end and nothing here applies.

use meridian_types::{DcName, NodeId};
use openraft::async_runtime::WatchReceiver;
use openraft::raft::TransferLeaderRequest;

use crate::error::Result;
use crate::node::{RaftNode, fatal};
use crate::read_policy::ReadPolicy;

impl RaftNode {
    /// Stops honouring the lease of `leader`, which the caller knows to be dead, so that this member grants its
    /// vote to a successor at once. Does nothing (and answers `false`) when the read policy relies on leases,
    /// when this member is not following `leader` any more, or when it leads itself.
    pub async fn release_dead_leader(&self, leader: NodeId) -> Result<bool> {
        self.check_running()?;
        if self.inner.read_policy == ReadPolicy::LeaseRead || leader == self.id() {
            return Ok(false);
        }
        let vote = {
            let rx = self.inner.raft.metrics();
            let m = rx.borrow_watched();
            if m.current_leader != Some(leader.0) || !m.vote.committed {
                return Ok(false);
            }
            m.vote
        };
        // openraft's own handover message: from the leader's vote to `leader` itself. A member that receives a
        // transfer naming its current vote drops that vote's lease; since it is not the target, it does not
        // campaign (so the last log id, which only the target checks, is not needed). Only the lease changes, and
        // only if the vote is still the one read above.
        let release = TransferLeaderRequest::new(vote, leader.0, None);
        // A member that is not the target never has to wait for its log, so the inner answer is always Ok.
        Ok(self.inner.raft.handle_transfer_leader(release).await.map_err(fatal)?.is_ok())
    }

    /// Starts a pre-vote round now rather than at the election timeout. The real election follows only if a
    /// quorum would grant it, so a member that campaigns wrongly disturbs nobody.
    pub async fn campaign(&self) -> Result<()> {
        self.check_running()?;
        self.inner.raft.trigger().elect(true).await.map_err(fatal)
    }

    /// The voters of the effective membership with their datacenters.
    pub fn voter_dcs(&self) -> Vec<(NodeId, DcName)> {
        let rx = self.inner.raft.metrics();
        let m = rx.borrow_watched();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .map(|id| {
                let dc = membership.get_node(&id).map(|n| n.dc.clone()).unwrap_or_default();
                (NodeId(id), DcName(dc))
            })
            .collect()
    }
}
