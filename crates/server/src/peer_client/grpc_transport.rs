//! [`GrpcTransport`]: the consensus crate's [`Transport`] over `meridianpb.Peer/Raft` (one message, one reply)
//! and `Peer/RaftStream` (a leader's ordered, pipelined append stream). The payload is opaque here; openraft applies its own per-RPC deadlines, and any failure becomes a consensus transport error so
//! openraft backs off and retries.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use tonic::Status;
use tonic::transport::Channel;

use meridian_consensus::{Error as ConsensusError, MemberRecord, Result as ConsensusResult, Transport};
use meridian_proto::meridianpb::RaftMessage;
use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_types::NodeId;

use super::MAX_PEER_MESSAGE_BYTES;
use super::channels::PeerChannels;

/// Consensus messages over gRPC, one reused channel per peer URL.
pub struct GrpcTransport {
    channels: Arc<PeerChannels>,
}

impl GrpcTransport {
    /// A transport drawing channels from `channels` (shared with request forwarding).
    pub fn new(channels: Arc<PeerChannels>) -> Self {
        GrpcTransport { channels }
    }

    fn client(&self, member: &MemberRecord) -> ConsensusResult<PeerClient<Channel>> {
        let channel = self.channels.get(&member.peer_url).map_err(ConsensusError::Transport)?;
        Ok(PeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }
}

fn peer_error(target: NodeId, member: &MemberRecord, status: &Status) -> ConsensusError {
    ConsensusError::Transport(format!(
        "peer {} ({:x}) at {}: {}",
        member.name,
        target.0,
        member.peer_url,
        status.message()
    ))
}

#[tonic::async_trait]
impl Transport for GrpcTransport {
    async fn send(&self, target: NodeId, member: &MemberRecord, payload: Vec<u8>) -> ConsensusResult<Vec<u8>> {
        match self.client(member)?.raft(RaftMessage { payload }).await {
            Ok(reply) => Ok(reply.into_inner().payload),
            Err(status) => Err(peer_error(target, member, &status)),
        }
    }

    fn streams_appends(&self) -> bool {
        true
    }

    fn append_stream(
        &self,
        target: NodeId,
        member: &MemberRecord,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, ConsensusResult<BoxStream<'static, ConsensusResult<Vec<u8>>>>> {
        let client = self.client(member);
        let member = member.clone();
        Box::pin(async move {
            let replies = open_stream(client?, requests).await.map_err(|s| peer_error(target, &member, &s))?;
            let replies =
                replies.map(move |reply| reply.map(|m| m.payload).map_err(|s| peer_error(target, &member, &s)));
            Ok(replies.boxed())
        })
    }
}

async fn open_stream(
    mut client: PeerClient<Channel>,
    requests: BoxStream<'static, Vec<u8>>,
) -> Result<tonic::Streaming<RaftMessage>, Status> {
    let requests = Outgoing(requests);
    Ok(client.raft_stream(requests).await?.into_inner())
}

/// The request stream as tonic takes it. A named type rather than a `map` adapter: with the adapter rustc cannot
/// prove the call's future `Send` (a known higher-ranked lifetime limitation).
struct Outgoing(BoxStream<'static, Vec<u8>>);

impl futures::Stream for Outgoing {
    type Item = RaftMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RaftMessage>> {
        self.0.poll_next_unpin(cx).map(|next| next.map(|payload| RaftMessage { payload }))
    }
}
