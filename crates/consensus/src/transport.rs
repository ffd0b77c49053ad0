//! The peer transport seam.
//!
//! openraft talks to peers through `RaftNetworkV2`. We implement it once, on top of a tiny
//! byte-oriented [`Transport`] trait: "deliver these bytes to member X and give me its reply". The
//! server implements `Transport` with its gRPC `meridianpb.Peer/Raft` service (opaque payload) and
//! feeds incoming payloads to `RaftNode::handle_peer_message`; tests use [`InProcessTransport`].
//! The payload format (bincode of [`PeerRequest`]/[`PeerReply`]) is private to this crate, so both
//! ends always agree.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
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
use openraft::storage::Snapshot;
use openraft::type_config::TypeConfigExt;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::append_stream;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::membership::{MembershipReply, MembershipRequest, execute_local};
use crate::node::{NodeInner, RaftNode};
use crate::snapshot_data::SnapshotData;
use crate::state_machine::KvSnapshot;
use crate::types::{Member, SnapshotMeta, TypeConfig, Vote};

/// Delivers opaque consensus messages between members.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Send `payload` to member `target` (described by `member`, from the Raft membership) and
    /// return its reply payload. Errors mean "not delivered or no reply"; openraft retries.
    async fn send(&self, target: NodeId, member: &Member, payload: Vec<u8>) -> Result<Vec<u8>>;

    /// Whether [`Transport::append_stream`] works. Without it openraft replicates one request at a time.
    fn streams_appends(&self) -> bool {
        false
    }

    /// Open an ordered stream to member `target`: deliver every payload of `requests`, in order, and return
    /// the target's reply payloads, in the same order. An error item (or the end of the replies) means the
    /// stream broke; openraft opens a new one. Only called when [`Transport::streams_appends`] is true.
    fn append_stream(
        &self,
        target: NodeId,
        member: &Member,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let _ = (member, requests);
        Box::pin(std::future::ready(Err(Error::Transport(format!("no append stream to {target}")))))
    }
}

/// Ends `stream` right after its first error item, as a broken connection delivers nothing more: the shape
/// [`Transport::append_stream`] replies must have.
pub fn until_first_error<T: Send + 'static>(stream: BoxStream<'static, Result<T>>) -> BoxStream<'static, Result<T>> {
    stream
        .scan(true, |open, item| {
            let out = open.then_some(item);
            *open = out.as_ref().is_some_and(|r| r.is_ok());
            std::future::ready(out)
        })
        .boxed()
}

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

/// Decode a peer request, hand it to the local openraft, encode the reply.
pub(crate) async fn dispatch(raft: &crate::node::Raft, bytes: &[u8]) -> Result<Vec<u8>> {
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

/// openraft's network factory over a [`Transport`].
pub(crate) struct NetworkFactory {
    transport: Arc<dyn Transport>,
    min_rpc_timeout: Duration,
}

impl NetworkFactory {
    /// `min_rpc_timeout` is the shortest time any RPC is given (see [`PeerClient::ttl`]).
    pub(crate) fn new(transport: Arc<dyn Transport>, min_rpc_timeout: Duration) -> Self {
        NetworkFactory { transport, min_rpc_timeout }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &Member) -> PeerClient {
        PeerClient {
            target: NodeId(target),
            member: node.clone(),
            transport: self.transport.clone(),
            min_rpc_timeout: self.min_rpc_timeout,
        }
    }
}

/// openraft's connection to one peer.
pub(crate) struct PeerClient {
    target: NodeId,
    member: Member,
    transport: Arc<dyn Transport>,
    min_rpc_timeout: Duration,
}

type Rpc<T> = std::result::Result<T, RPCError<TypeConfig>>;

impl PeerClient {
    #[cfg(test)]
    pub(crate) fn for_tests(target: NodeId, transport: Arc<dyn Transport>, min_rpc_timeout: Duration) -> Self {
        PeerClient { target, member: Member::default(), transport, min_rpc_timeout }
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

impl RaftNetworkV2<TypeConfig> for PeerClient {
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

/// An in-process "network" for tests and simulation: a registry of nodes, each message delivered
/// by calling the target's [`RaftNode::handle_peer_message`], so the real encoding is exercised.
/// Nodes are held weakly, so the registry never keeps a shut-down node's storage open.
#[derive(Clone, Default)]
pub struct InProcessTransport {
    inner: Arc<Registry>,
    /// The sending member, when this handle belongs to one (see [`InProcessTransport::for_node`]).
    from: Option<NodeId>,
}

#[derive(Default)]
struct Registry {
    nodes: RwLock<HashMap<NodeId, Weak<NodeInner>>>,
    isolated: RwLock<HashSet<NodeId>>,
}

impl InProcessTransport {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle for member `from`: messages it sends fail while `from` is isolated.
    pub fn for_node(&self, from: NodeId) -> Arc<dyn Transport> {
        Arc::new(InProcessTransport { inner: self.inner.clone(), from: Some(from) })
    }

    /// Make `node` reachable under its id.
    pub fn register(&self, node: &RaftNode) {
        self.inner.nodes.write().insert(node.id(), Arc::downgrade(&node.inner));
    }

    /// Forget member `id`.
    pub fn unregister(&self, id: NodeId) {
        self.inner.nodes.write().remove(&id);
    }

    /// Cut member `id` off (both directions) or reconnect it.
    pub fn set_isolated(&self, id: NodeId, isolated: bool) {
        let mut set = self.inner.isolated.write();
        if isolated {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }
}

impl InProcessTransport {
    /// `Err` while `target` or this handle's member is isolated.
    fn reachable(&self, target: NodeId) -> Result<()> {
        let isolated = self.inner.isolated.read();
        if isolated.contains(&target) || self.from.is_some_and(|f| isolated.contains(&f)) {
            return Err(Error::Transport(format!("{target} is unreachable (isolated)")));
        }
        Ok(())
    }

    fn node(&self, target: NodeId) -> Result<RaftNode> {
        self.reachable(target)?;
        let node = self.inner.nodes.read().get(&target).and_then(Weak::upgrade);
        match node {
            Some(inner) => Ok(RaftNode { inner }),
            None => Err(Error::Transport(format!("{target} is not registered"))),
        }
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn send(&self, target: NodeId, _member: &Member, payload: Vec<u8>) -> Result<Vec<u8>> {
        self.node(target)?.handle_peer_message(payload).await
    }

    fn streams_appends(&self) -> bool {
        true
    }

    fn append_stream(
        &self,
        target: NodeId,
        _member: &Member,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let opened = self.node(target).and_then(|node| node.serve_append_stream(requests));
        let link = self.clone();
        Box::pin(async move {
            // Isolating either end breaks the stream at the next reply, as a cut connection would.
            let replies = opened?.map(move |reply| link.reachable(target).map(|()| reply));
            Ok(until_first_error(replies.boxed()))
        })
    }
}
