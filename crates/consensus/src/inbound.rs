//! The receiving side of the peer transport: a request from another member's openraft (or a forwarded
//! membership change) handed to the local one, and its answer encoded for the way back.

use openraft::storage::Snapshot;

use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::membership::execute_local;
use crate::raft::Raft;
use crate::snapshot_data::SnapshotData;
use crate::transport::wire::{PeerReply, PeerRequest};

/// Decode a peer request, hand it to the local openraft, encode the reply.
pub(crate) async fn dispatch(raft: &Raft, bytes: &[u8]) -> Result<Vec<u8>> {
    let req: PeerRequest = decode(bytes).map_err(|e| Error::Transport(format!("bad peer request: {e}")))?;
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
