//! The server half of `meridianpb.Peer`, served on the peer listener: consensus messages go to the Raft node;
//! forwarded writes, ReadIndex and lease calls are answered as the leader would answer its own clients; ranges for a
//! member that cannot apply, from this member's state after its read barrier.
//! Failures use etcd's status codes and texts, so the forwarding member can hand them on unchanged.

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};

use meridian_consensus::{SenderCheck, any_sender, encode_apply_result};
use meridian_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, RangeRequest,
    RangeResponse,
};
use meridian_proto::meridianpb::peer_server::{Peer, PeerServer};
use meridian_proto::meridianpb::{
    CheckReport, CheckReportAck, ForwardBatch, ProbeRequest, ProbeResponse, RaftMessage, ReachabilityAck,
    ReachabilityReport, ReadIndexRequest, ReadIndexResponse,
};
use meridian_types::EtcdError;
use tonic::{Request, Response, Status, Streaming};

use super::forward_serve::{self, ReplyStream};
use crate::check_runner::{Inbox, wire};
use crate::error::to_status;
use crate::leader_loss::AppendStreams;
use crate::lease;
use crate::member::Member;
use crate::net;
use crate::peer_client::MAX_PEER_MESSAGE_BYTES;
use crate::reach_state;
use crate::stopped_member;
use crate::tls::identity::url_host;

/// The peer service of one member.
pub struct PeerService {
    member: Arc<Member>,
    append_streams: AppendStreams,
    checks: Inbox,
}

impl PeerService {
    /// The tonic server for `member`, with peer-sized message limits; every append stream a leader opens is
    /// reported to `append_streams` while it is open; forwarded TTL reports go to the check runner's `checks`.
    pub fn server(member: Arc<Member>, append_streams: AppendStreams, checks: Inbox) -> PeerServer<PeerService> {
        PeerServer::new(PeerService { member, append_streams, checks })
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
    }
}

impl PeerService {
    /// The members the connection of `request` may speak for: on a TLS peer link, a member this one knows only if
    /// its certificate names that member's peer-URL host, so no member's certificate speaks for another (a member
    /// not known here yet, as the founder is to a member that has just joined, is left to the listener's check
    /// that the certificate names some member of the cluster); on a plain link (loopback, the simulation), any.
    fn senders<T>(&self, request: &Request<T>) -> SenderCheck {
        let Some(sans) = net::cert_sans(request) else { return any_sender() };
        let raft = self.member.raft().clone();
        Arc::new(move |id| match raft.member(id) {
            Some(m) => url_host(&m.peer_url).is_some_and(|host| sans.contains(&host)),
            None => true,
        })
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn raft(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let may_send = self.senders(&request);
        let payload = request.into_inner().payload;
        match self.member.raft().handle_peer_message_from(payload, &may_send).await {
            Ok(payload) => Ok(Response::new(RaftMessage { payload })),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    async fn raft_stream(
        &self,
        request: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<BoxStream<'static, Result<RaftMessage, Status>>>, Status> {
        // A broken request stream ends the input; the answers still owed are sent before the stream closes. The
        // end is reported either way: a leader whose process died ends every stream it had open.
        let may_send = self.senders(&request);
        let open = self.append_streams.opened();
        let end = stream::once(async move {
            drop(open);
            None
        });
        let requests = request
            .into_inner()
            .take_while(|message| {
                if let Err(status) = message {
                    tracing::debug!(%status, "append stream broke");
                }
                std::future::ready(message.is_ok())
            })
            .map(|message| message.ok().map(|m| m.payload))
            .chain(end)
            .filter_map(std::future::ready)
            .boxed();
        let replies = self
            .member
            .raft()
            .serve_append_stream_from(requests, may_send)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(replies.map(|payload| Ok(RaftMessage { payload })).boxed()))
    }

    async fn forward_stream(&self, request: Request<Streaming<ForwardBatch>>) -> Result<Response<ReplyStream>, Status> {
        let member = self.member.clone();
        let replies = forward_serve::serve(request.into_inner(), move |cmd| {
            let member = member.clone();
            // Proposed here only: a forwarded write never hops on, so a stale hint cannot make it loop.
            async move {
                match member.raft().propose(cmd).await {
                    Ok(result) => Ok(encode_apply_result(&result)),
                    Err(e) => Err(to_status(EtcdError::from(e))),
                }
            }
        });
        Ok(Response::new(replies))
    }

    async fn read_index(&self, _request: Request<ReadIndexRequest>) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.member.raft().read_index().await.map_err(|e| to_status(EtcdError::from(e)))?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn lease_keep_alive(
        &self,
        request: Request<LeaseKeepAliveRequest>,
    ) -> Result<Response<LeaseKeepAliveResponse>, Status> {
        let id = request.into_inner().id;
        lease::keep_alive_local(&self.member, id).map(Response::new).map_err(to_status)
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        if !self.member.lessor().is_leader() {
            return Err(to_status(EtcdError::NotLeader));
        }
        Ok(Response::new(lease::time_to_live_local(&self.member, &req)))
    }

    async fn range(&self, request: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = request.into_inner();
        Ok(Response::new(stopped_member::range_here(&self.member, &req).await?))
    }

    async fn probe(&self, _request: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse { member: self.member.id().0 }))
    }

    async fn report_reachability(
        &self,
        request: Request<ReachabilityReport>,
    ) -> Result<Response<ReachabilityAck>, Status> {
        // Kept whatever this member's role: a report is only read by the verdict driver while it leads, and
        // one that arrives just before an election is then already here.
        let report = reach_state::from_wire(&request.into_inner());
        self.member.reach().accept(report);
        Ok(Response::new(ReachabilityAck { accepted: self.member.raft().status().is_leader }))
    }

    async fn report_check(&self, request: Request<CheckReport>) -> Result<Response<CheckReportAck>, Status> {
        let report = wire::from_wire(request.get_ref()).map_err(Status::invalid_argument)?;
        let accepted = self.checks.deliver(report).await;
        Ok(Response::new(CheckReportAck { accepted }))
    }
}
