//! The calls a non-leader makes to the leader on a client's behalf: forwarded writes, ReadIndex and lease
//! keep-alive/time-to-live. Errors come back as the etcd errors the client should see.

use std::sync::Arc;

use meridian_consensus::{Member as RaftMember, decode_apply_result};
use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_proto::meridianpb::{ForwardRequest, RaftCommand, ReadIndexRequest};
use meridian_types::EtcdError;
use tonic::transport::Channel;

use super::MAX_PEER_MESSAGE_BYTES;
use super::channels::PeerChannels;

/// Client of the leader's peer service.
pub struct LeaderClient {
    channels: Arc<PeerChannels>,
}

/// Turns a failed peer call into the etcd error the client sees. The leader answers with etcd's own status
/// codes and texts (see [`super::service`]), so those pass through; anything else means the leader could not
/// be reached or did not answer, and the outcome of a write is then unknown, as with etcd's timeout.
pub fn status_to_etcd(status: &tonic::Status) -> EtcdError {
    let msg = status.message();
    for known in [
        EtcdError::NotLeader,
        EtcdError::NoLeader,
        EtcdError::LeaderChanged,
        EtcdError::Timeout,
        EtcdError::Stopped,
        EtcdError::LeaseNotFound,
    ] {
        if msg == known.to_string() {
            return known;
        }
    }
    tracing::debug!(code = ?status.code(), %msg, "peer call failed");
    EtcdError::Timeout
}

impl LeaderClient {
    /// A client drawing channels from `channels`.
    pub fn new(channels: Arc<PeerChannels>) -> Self {
        LeaderClient { channels }
    }

    fn client(&self, leader: &RaftMember) -> Result<PeerClient<Channel>, EtcdError> {
        let channel = self.channels.get(&leader.peer_url).map_err(EtcdError::Internal)?;
        Ok(PeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.channels.timeouts().request);
        req
    }

    /// Has the leader propose `cmd`; returns the kv store's answer to it.
    pub async fn forward(
        &self,
        leader: &RaftMember,
        cmd: RaftCommand,
    ) -> Result<meridian_kv::Result<CommandResponse>, EtcdError> {
        let reply = self
            .client(leader)?
            .forward(self.request(ForwardRequest { command: Some(cmd) }))
            .await
            .map_err(|s| status_to_etcd(&s))?;
        decode_apply_result(&reply.into_inner().payload).map_err(|e| EtcdError::Internal(e.to_string()))
    }

    /// The leader's read index.
    pub async fn read_index(&self, leader: &RaftMember) -> Result<u64, EtcdError> {
        let reply =
            self.client(leader)?.read_index(self.request(ReadIndexRequest {})).await.map_err(|s| status_to_etcd(&s))?;
        Ok(reply.into_inner().index)
    }

    /// Renews a lease on the leader.
    pub async fn keep_alive(&self, leader: &RaftMember, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
        let reply = self
            .client(leader)?
            .lease_keep_alive(self.request(LeaseKeepAliveRequest { id }))
            .await
            .map_err(|s| status_to_etcd(&s))?;
        Ok(reply.into_inner())
    }

    /// A lease's remaining time, from the leader.
    pub async fn time_to_live(
        &self,
        leader: &RaftMember,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        let reply = self.client(leader)?.lease_time_to_live(self.request(req)).await.map_err(|s| status_to_etcd(&s))?;
        Ok(reply.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::to_status;

    #[test]
    fn leader_errors_pass_through_and_transport_failures_are_timeouts() {
        for e in [EtcdError::NotLeader, EtcdError::NoLeader, EtcdError::LeaderChanged, EtcdError::LeaseNotFound] {
            assert_eq!(status_to_etcd(&to_status(e.clone())), e);
        }
        assert_eq!(status_to_etcd(&tonic::Status::unavailable("tcp connect error")), EtcdError::Timeout);
    }
}
