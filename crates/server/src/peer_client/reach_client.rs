//! The calling side of reachability: a probe to any member, and this member's report to the leader. Both
//! cross the fault gate like every peer message, so an emulated partition silences probes as it silences Raft.

use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::MemberRecord;
use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_proto::meridianpb::{ProbeRequest, ReachabilityReport};
use meridian_types::{DcName, NodeId};

use super::channels::PeerChannels;
use crate::fault::FaultGate;
use crate::identity;

/// Why a probe or report did not come back.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// The emulated network dropped or blocked it.
    #[error("not delivered by the emulated network")]
    Undelivered,
    /// No channel could be made to the member's URL.
    #[error("no channel to {0}")]
    Channel(String),
    /// The call failed.
    #[error("call failed: {0}")]
    Call(#[source] tonic::Status),
}

/// Probes members and reports to the leader.
pub struct ReachClient {
    me: NodeId,
    channels: Arc<PeerChannels>,
    gate: Arc<FaultGate>,
}

impl ReachClient {
    /// A client for member `me` over `channels`, through `gate`.
    pub fn new(me: NodeId, channels: Arc<PeerChannels>, gate: Arc<FaultGate>) -> Self {
        ReachClient { me, channels, gate }
    }

    fn client(&self, to: &MemberRecord) -> Result<PeerClient<tonic::transport::Channel>, ReachError> {
        let channel = self.channels.get(&to.peer_url).map_err(ReachError::Channel)?;
        Ok(PeerClient::new(channel))
    }

    async fn through_gate<T>(
        &self,
        to: &MemberRecord,
        call: impl Future<Output = Result<T, ReachError>>,
    ) -> Result<T, ReachError> {
        let (id, dc) = (identity::member_id(&to.peer_url), DcName(to.dc.clone()));
        self.gate.outbound(id, &dc).await.map_err(|_| ReachError::Undelivered)?;
        let out = call.await?;
        self.gate.inbound(id, &dc).await.map_err(|_| ReachError::Undelivered)?;
        Ok(out)
    }

    /// Probes `to`; answers once it replied, within `timeout` (which the caller also bounds).
    pub async fn probe(&self, to: &MemberRecord, timeout: Duration) -> Result<(), ReachError> {
        self.through_gate(to, async {
            let mut req = tonic::Request::new(ProbeRequest { from: self.me.0 });
            req.set_timeout(timeout);
            self.client(to)?.probe(req).await.map_err(ReachError::Call)?;
            Ok(())
        })
        .await
    }

    /// Sends `report` to the leader `to`; whether the leader kept it.
    pub async fn report(
        &self,
        to: &MemberRecord,
        report: ReachabilityReport,
        timeout: Duration,
    ) -> Result<bool, ReachError> {
        self.through_gate(to, async {
            let mut req = tonic::Request::new(report);
            req.set_timeout(timeout);
            Ok(self.client(to)?.report_reachability(req).await.map_err(ReachError::Call)?.into_inner().accepted)
        })
        .await
    }
}
