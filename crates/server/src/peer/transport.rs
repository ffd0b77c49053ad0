//! [`GrpcTransport`]: the consensus crate's [`Transport`] over `meridianpb.Peer/Raft`. The payload is opaque
//! here; openraft applies its own per-RPC deadlines, and any failure becomes a consensus transport error so
//! openraft backs off and retries.

use std::sync::Arc;

use meridian_consensus::{Error as ConsensusError, Member, Result as ConsensusResult, Transport};
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
}

#[tonic::async_trait]
impl Transport for GrpcTransport {
    async fn send(&self, target: NodeId, member: &Member, payload: Vec<u8>) -> ConsensusResult<Vec<u8>> {
        let channel = self.channels.get(&member.peer_url).map_err(ConsensusError::Transport)?;
        let mut client = PeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
        match client.raft(RaftMessage { payload }).await {
            Ok(reply) => Ok(reply.into_inner().payload),
            Err(status) => Err(ConsensusError::Transport(format!(
                "peer {} ({:x}) at {}: {}",
                member.name,
                target.0,
                member.peer_url,
                status.message()
            ))),
        }
    }
}
