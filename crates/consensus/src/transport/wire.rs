//! What crosses the peer transport: bincode of [`PeerRequest`] and [`PeerReply`], private to this crate.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::membership::{MembershipReply, MembershipRequest};
use crate::types::{SnapshotMeta, TypeConfig, Vote};

/// A request from one member's openraft to another's.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum PeerRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: Vec<u8>,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A membership change forwarded to the leader (see `membership`).
    Membership(MembershipRequest),
}

/// The reply to a [`PeerRequest`].
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum PeerReply {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// The receiving node could not handle the request (typically: it is shutting down).
    Error(String),
    /// The outcome of a forwarded membership change.
    Membership(MembershipReply),
}

/// Encode a membership request for the leader.
pub(crate) fn membership_request(req: &MembershipRequest) -> Result<Vec<u8>> {
    encode(&PeerRequest::Membership(req.clone())).map_err(|e| Error::Transport(e.to_string()))
}

/// Decode the leader's answer to a membership request.
pub(crate) fn membership_reply(bytes: &[u8]) -> Result<()> {
    match decode::<PeerReply>(bytes) {
        Ok(PeerReply::Membership(r)) => r.into(),
        Ok(PeerReply::Error(msg)) => Err(Error::Transport(format!("leader could not take the request: {msg}"))),
        Ok(_) => Err(Error::Transport("unexpected reply kind to a membership request".into())),
        Err(e) => Err(Error::Transport(format!("bad membership reply: {e}"))),
    }
}
