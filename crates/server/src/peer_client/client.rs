//! The calls a non-leader makes to the leader on a client's behalf: forwarded writes (over one
//! [`ForwardPipe`] per leader), ReadIndex, lease keep-alive/time-to-live, and the linearizable ranges of a member that
//! cannot apply. Errors come back as the etcd errors
//! the client should see.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use meridian_consensus::{MemberRecord, decode_apply_result};
use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, RangeRequest,
    RangeResponse,
};
use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_proto::meridianpb::{RaftCommand, ReadIndexRequest};
use meridian_types::{DcName, EtcdError};
use parking_lot::Mutex;
use tonic::transport::Channel;

use super::MAX_PEER_MESSAGE_BYTES;
use super::call_error::{CallError, never_connected};
use super::channels::PeerChannels;
use super::forward_pipe::ForwardPipe;
use super::read_index_batch::ReadIndexBatcher;
use crate::error::status_to_etcd;
use crate::fault::FaultGate;
use crate::identity;

/// Client of the leader's peer service.
pub struct LeaderClient {
    channels: Arc<PeerChannels>,
    gate: Option<Arc<FaultGate>>,
    /// The forwarding stream to each leader URL, opened on the first write forwarded there.
    pipes: Mutex<BTreeMap<String, Arc<ForwardPipe>>>,
    /// The rounds of ReadIndex calls to each leader URL.
    read_batches: Mutex<BTreeMap<String, Arc<ReadIndexBatcher>>>,
}

impl LeaderClient {
    /// A client drawing channels from `channels`.
    pub fn new(channels: Arc<PeerChannels>) -> Self {
        LeaderClient {
            channels,
            gate: None,
            pipes: Mutex::new(BTreeMap::new()),
            read_batches: Mutex::new(BTreeMap::new()),
        }
    }

    /// Calls to the leader cross the WAN/fault emulation `gate`, like the member's Raft traffic.
    pub fn with_fault_gate(mut self, gate: Arc<FaultGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Runs `call` with the emulated network's delay (or loss) on the way to `leader` and on the way back. A
    /// request lost on the way there was never sent; an answer lost on the way back is what an unreachable
    /// leader gives: etcd's timeout, outcome unknown.
    async fn emulated<T>(
        &self,
        leader: &MemberRecord,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let Some(gate) = &self.gate else { return call.await };
        let (id, dc) = (identity::member_id(&leader.peer_url), DcName(leader.dc.clone()));
        let lost = |e: crate::fault::Undelivered| tracing::debug!(error = %e, "call to the leader not delivered");
        gate.outbound(id, &dc).await.map_err(|e| {
            lost(e);
            CallError::NotSent
        })?;
        let out = call.await;
        gate.inbound(id, &dc).await.map_err(|e| {
            lost(e);
            CallError::Etcd(EtcdError::Timeout)
        })?;
        out
    }

    fn client(&self, leader: &MemberRecord) -> Result<PeerClient<Channel>, EtcdError> {
        let channel = self.channels.get(&leader.peer_url).map_err(EtcdError::Internal)?;
        Ok(PeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }

    /// The open pipe to `leader`, opening a new one if there is none or its stream has failed.
    fn pipe(&self, leader: &MemberRecord) -> Result<Arc<ForwardPipe>, EtcdError> {
        let key = leader.peer_url.trim_end_matches('/');
        let mut pipes = self.pipes.lock();
        if let Some(pipe) = pipes.get(key).filter(|p| !p.is_closed()) {
            return Ok(pipe.clone());
        }
        let pipe = Arc::new(ForwardPipe::open(self.client(leader)?));
        // Pipes to former leaders whose streams have ended since are of no further use.
        pipes.retain(|_, p| !p.is_closed());
        pipes.insert(key.to_owned(), pipe.clone());
        Ok(pipe)
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.channels.timeouts().request);
        req
    }

    /// Has the leader propose `cmd`; returns the kv store's answer to it.
    pub async fn forward(
        &self,
        leader: &MemberRecord,
        cmd: RaftCommand,
    ) -> Result<meridian_kv::Result<CommandResponse>, CallError> {
        let payload = self
            .emulated(leader, async { self.pipe(leader)?.call(cmd, self.channels.timeouts().request).await })
            .await?;
        decode_apply_result(&payload).map_err(|e| CallError::Etcd(EtcdError::Internal(e.to_string())))
    }

    /// The leader's read index, obtained after this call was made: concurrent reads share one call (see
    /// [`ReadIndexBatcher`]).
    pub async fn read_index(&self, leader: &MemberRecord) -> Result<u64, CallError> {
        self.emulated(leader, async {
            let client = self.client(leader)?;
            let timeout = self.channels.timeouts().request;
            let batcher = {
                let mut batches = self.read_batches.lock();
                batches.entry(leader.peer_url.trim_end_matches('/').to_owned()).or_default().clone()
            };
            batcher
                .read_index(move || {
                    let mut client = client.clone();
                    async move {
                        let mut req = tonic::Request::new(ReadIndexRequest {});
                        req.set_timeout(timeout);
                        let reply = client.read_index(req).await.map_err(|s| {
                            if never_connected(&s) { CallError::NotSent } else { CallError::Etcd(status_to_etcd(&s)) }
                        })?;
                        Ok(reply.into_inner().index)
                    }
                })
                .await
        })
        .await
    }

    /// A linearizable range answered by `member` (any member that can apply; it takes its own read barrier).
    pub async fn range(&self, member: &MemberRecord, req: RangeRequest) -> Result<RangeResponse, CallError> {
        let reply = self
            .emulated(member, async {
                self.client(member)?.range(self.request(req)).await.map_err(|s| {
                    if never_connected(&s) { CallError::NotSent } else { CallError::Etcd(status_to_etcd(&s)) }
                })
            })
            .await?;
        Ok(reply.into_inner())
    }

    /// Renews a lease on the leader.
    pub async fn keep_alive(&self, leader: &MemberRecord, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
        let reply = self
            .emulated(leader, async {
                self.client(leader)?
                    .lease_keep_alive(self.request(LeaseKeepAliveRequest { id }))
                    .await
                    .map_err(|s| CallError::Etcd(status_to_etcd(&s)))
            })
            .await
            .map_err(CallError::into_etcd)?;
        Ok(reply.into_inner())
    }

    /// A lease's remaining time, from the leader.
    pub async fn time_to_live(
        &self,
        leader: &MemberRecord,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        let reply = self
            .emulated(leader, async {
                self.client(leader)?
                    .lease_time_to_live(self.request(req))
                    .await
                    .map_err(|s| CallError::Etcd(status_to_etcd(&s)))
            })
            .await
            .map_err(CallError::into_etcd)?;
        Ok(reply.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_to_the_leader_cross_the_emulated_wan_both_ways() {
        use std::time::Duration;

        use meridian_types::NodeId;
        use meridian_types::wan::{LinkSpec, WanConfig};

        use crate::fault::{FaultState, Faults};

        let link = LinkSpec {
            from: DcName::from("dc-c"),
            to: DcName::from("dc-a"),
            rtt_ms: 30,
            loss: 0.0,
            blocked: false,
            symmetric: true,
        };
        let faults = Arc::new(FaultState::new(Faults::from_wan(WanConfig { links: vec![link] })).unwrap());
        let gate = FaultGate::new(NodeId(1), DcName::from("dc-c"), faults.clone(), meridian_types::SplitMix64::new(1));
        let channels = Arc::new(PeerChannels::new(super::super::channels::PeerTimeouts::from_election_ms(1000)));
        let client = LeaderClient::new(channels).with_fault_gate(Arc::new(gate));
        let leader = MemberRecord { dc: "dc-a".into(), peer_url: "http://127.0.0.1:1".into(), ..Default::default() };

        let start = tokio::time::Instant::now();
        let reached_at = client.emulated(&leader, async { Ok::<_, CallError>(start.elapsed()) }).await.unwrap();
        assert_eq!(reached_at, Duration::from_millis(15), "the call starts after the one-way delay");
        assert_eq!(start.elapsed(), Duration::from_millis(30), "and its answer takes as long to come back");

        // The leader's DC cut off: the call is never made, and the caller knows it was not sent.
        let mut cut = faults.get();
        cut.isolated_dcs.insert(DcName::from("dc-a"));
        faults.set(cut).unwrap();
        let called = std::sync::atomic::AtomicBool::new(false);
        let err = client
            .emulated(&leader, async {
                called.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, CallError>(())
            })
            .await
            .unwrap_err();
        assert_eq!(err, CallError::NotSent);
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst), "a blocked request never reaches the leader");
    }
}
