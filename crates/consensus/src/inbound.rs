//! The receiving side of the peer transport: a request from another member's openraft (or a forwarded
//! membership change) handed to the local one, and its answer encoded for the way back.

use meridian_types::NodeId;
use openraft::storage::Snapshot;
use openraft::vote::RaftLeaderId;

use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::leader_contact::LeaderContact;
use crate::membership::execute_local;
use crate::raft::Raft;
use crate::snapshot_data::SnapshotData;
use crate::transport::wire::{PeerReply, PeerRequest};
use crate::types::SenderCheck;

/// The member a request speaks for: the leader or candidate whose vote it carries. A forwarded membership change
/// names none (it is judged by the leader like any request from a member).
fn sender(req: &PeerRequest) -> Option<NodeId> {
    let of = |vote: &crate::types::Vote| NodeId(*vote.leader_id().node_id());
    match req {
        PeerRequest::Append(rpc) => Some(of(&rpc.vote)),
        PeerRequest::Vote(rpc) | PeerRequest::PreVote(rpc) => Some(of(&rpc.vote)),
        PeerRequest::Snapshot { vote, .. } => Some(of(vote)),
        PeerRequest::TransferLeader(rpc) => Some(of(rpc.from_leader())),
        PeerRequest::Membership(_) => None,
    }
}

/// Decode a peer request, hand it to the local openraft, encode the reply. A request speaking for a member the
/// connection may not speak for is refused unseen by openraft. An append from an established leader is recorded
/// in `contact` as it arrives.
pub(crate) async fn dispatch(
    raft: &Raft,
    bytes: &[u8],
    may_send: &SenderCheck,
    contact: &LeaderContact,
) -> Result<Vec<u8>> {
    let req: PeerRequest = decode(bytes).map_err(|e| Error::Transport(format!("bad peer request: {e}")))?;
    if let Some(id) = sender(&req).filter(|id| !may_send(*id)) {
        tracing::warn!(member = %format!("{:x}", id.0), "refused a peer message: its connection's certificate does not name that member's peer host");
        let refusal = PeerReply::Error(format!("member {:x}: the peer certificate does not name its host", id.0));
        return encode(&refusal).map_err(|e| Error::Transport(e.to_string()));
    }
    if let PeerRequest::Append(rpc) = &req
        && rpc.vote.committed
    {
        contact.heard(NodeId(*rpc.vote.leader_id().node_id()));
    }
    let reply = match req {
        PeerRequest::Append(rpc) => match raft.append_entries(rpc).await {
            Ok(r) => PeerReply::Append(r),
            Err(e) => PeerReply::Error(e.to_string()),
        },
        PeerRequest::Vote(rpc) => match raft.vote(rpc).await {
            Ok(r) => PeerReply::Vote(r),
            Err(e) => PeerReply::Error(e.to_string()),
        },
        PeerRequest::PreVote(rpc) => match raft.pre_vote(rpc).await {
            Ok(r) => PeerReply::Vote(r),
            Err(e) => PeerReply::Error(e.to_string()),
        },
        PeerRequest::Snapshot { vote, meta, data } => {
            match raft.install_full_snapshot(vote, Snapshot { meta, snapshot: SnapshotData::Bytes(data) }).await {
                Ok(r) => PeerReply::Snapshot(r),
                Err(e) => PeerReply::Error(e.to_string()),
            }
        }
        PeerRequest::TransferLeader(rpc) => match raft.handle_transfer_leader(rpc).await {
            Ok(r) => PeerReply::TransferLeader(r),
            Err(e) => PeerReply::Error(e.to_string()),
        },
        PeerRequest::Membership(req) => PeerReply::Membership(execute_local(raft, &req).await.into()),
    };
    encode(&reply).map_err(|e| Error::Transport(e.to_string()))
}
