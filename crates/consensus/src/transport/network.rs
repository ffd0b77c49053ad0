//! The leader's side of the seam: openraft's `RaftNetworkV2` over a [`Transport`], one [`PeerNetwork`] per peer.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use meridian_types::NodeId;
use openraft::StorageError;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2, stream_append_sequential};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::TypeConfigExt;

use super::Transport;
use super::wire::{PeerReply, PeerRequest};
use crate::append_stream;
use crate::codec::{decode, encode};
use crate::snapshot_data::SnapshotData;
use crate::state_machine::KvSnapshot;
use crate::types::{MemberRecord, TypeConfig, Vote};

/// openraft's network factory over a [`Transport`].
pub(crate) struct NetworkFactory {
    transport: Arc<dyn Transport>,
    min_rpc_timeout: Duration,
}

impl NetworkFactory {
    /// `min_rpc_timeout` is the shortest time any RPC is given (see [`PeerNetwork::ttl`]).
    pub(crate) fn new(transport: Arc<dyn Transport>, min_rpc_timeout: Duration) -> Self {
        NetworkFactory { transport, min_rpc_timeout }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: u64, node: &MemberRecord) -> PeerNetwork {
        PeerNetwork {
            target: NodeId(target),
            member: node.clone(),
            transport: self.transport.clone(),
            min_rpc_timeout: self.min_rpc_timeout,
        }
    }
}

/// openraft's connection to one peer.
pub(crate) struct PeerNetwork {
    target: NodeId,
    member: MemberRecord,
    transport: Arc<dyn Transport>,
    min_rpc_timeout: Duration,
}

type Rpc<T> = std::result::Result<T, RPCError<TypeConfig>>;

impl PeerNetwork {
    #[cfg(test)]
    pub(crate) fn for_tests(target: NodeId, transport: Arc<dyn Transport>, min_rpc_timeout: Duration) -> Self {
        PeerNetwork { target, member: MemberRecord::default(), transport, min_rpc_timeout }
    }

    /// The timeout for one RPC. openraft offers the heartbeat interval for appends, but an append carries an
    /// fsync on the follower and, across datacenters, a WAN round trip: both can exceed a 100 ms heartbeat, and
    /// timing them out makes the leader resend the same entries forever instead of waiting for the answer.
    /// Liveness does not depend on this timeout (elections run on their own timers), so it is never shorter
    /// than `min_rpc_timeout`.
    fn ttl(&self, option: &RPCOption) -> Duration {
        option.hard_ttl().max(self.min_rpc_timeout)
    }

    /// Send one request; `Err` carries an openraft "unreachable" so it backs off and retries.
    async fn call(&self, req: &PeerRequest, ttl: Duration) -> std::result::Result<PeerReply, Unreachable<TypeConfig>> {
        let payload = encode(req).map_err(Unreachable::from_string)?;
        let sent = tokio::time::timeout(ttl, self.transport.send(self.target, &self.member, payload)).await;
        let bytes = match sent {
            Err(_) => {
                return Err(Unreachable::from_string(format!("rpc to {} timed out after {ttl:?}", self.target)));
            }
            Ok(Err(e)) => return Err(Unreachable::from_string(e)),
            Ok(Ok(b)) => b,
        };
        match decode::<PeerReply>(&bytes) {
            Ok(PeerReply::Error(msg)) => Err(Unreachable::from_string(format!("peer {}: {msg}", self.target))),
            Ok(reply) => Ok(reply),
            Err(e) => Err(Unreachable::from_string(format!("bad reply from {}: {e}", self.target))),
        }
    }

    async fn vote_like(&self, req: PeerRequest, option: &RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        match self.call(&req, self.ttl(option)).await? {
            PeerReply::Vote(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}

fn unexpected() -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string("unexpected reply kind"))
}

impl RaftNetworkV2<TypeConfig> for PeerNetwork {
    type SnapshotData = SnapshotData;

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Rpc<BoxStream<'s, Rpc<StreamAppendResult<TypeConfig>>>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        // A stream that can hold only one request (a heartbeat) gains nothing from a stream of its own.
        if !self.transport.streams_appends() || input.size_hint().1 == Some(1) {
            return stream_append_sequential(self, input, option);
        }
        let ttl = self.ttl(&option);
        let (transport, target, member) = (self.transport.clone(), self.target, self.member.clone());
        Box::pin(async move {
            // Open nothing until there is a request to send: openraft applies its retry backoff while producing
            // a request, so opening first would retry a refused connection in a tight loop.
            let mut input = input;
            let Some(first) = input.next().await else {
                return Ok(futures::stream::empty().boxed());
            };
            let sent = Arc::new(AtomicU64::new(0));
            let requests = append_stream::encode_requests(futures::stream::iter([first]).chain(input), sent.clone());
            let opening = transport.append_stream(target, &member, requests);
            let replies = match tokio::time::timeout(ttl, opening).await {
                Err(_) => {
                    let e = format!("opening append stream to {target} timed out after {ttl:?}");
                    return Err(RPCError::Unreachable(Unreachable::from_string(e)));
                }
                Ok(Err(e)) => return Err(RPCError::Unreachable(Unreachable::from_string(e))),
                Ok(Ok(replies)) => replies,
            };
            Ok(append_stream::decode_replies(replies, sent, ttl, target.0))
        })
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<TypeConfig>> {
        match self.call(&PeerRequest::Append(rpc), self.ttl(&option)).await? {
            PeerReply::Append(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        self.vote_like(PeerRequest::Vote(rpc), &option).await
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        self.vote_like(PeerRequest::PreVote(rpc), &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: KvSnapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> std::result::Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let signature = snapshot.meta.signature();
        let data = snapshot.snapshot.into_bytes().await.map_err(|e| {
            StreamingError::StorageError(StorageError::read_snapshot(Some(signature), TypeConfig::err_from_error(&e)))
        })?;
        let req = PeerRequest::Snapshot { vote, meta: snapshot.meta, data };
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            reply = self.call(&req, self.ttl(&option)) => match reply? {
                PeerReply::Snapshot(r) => Ok(r),
                _ => Err(StreamingError::Network(NetworkError::from_string("unexpected reply kind"))),
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<TransferLeaderResponse<TypeConfig>> {
        match self.call(&PeerRequest::TransferLeader(req), self.ttl(&option)).await? {
            PeerReply::TransferLeader(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}
