//! The calling side of check-report forwarding: a TTL report handed to the member that runs the check
//! (`meridianpb.Peer/ReportCheck`). Like reachability probes it crosses the fault gate, so an emulated partition
//! stops it as it stops Raft, and the report then goes through the log instead.

use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::MemberRecord;
use meridian_proto::meridianpb::CheckReport;
use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_types::DcName;

use super::channels::PeerChannels;
use super::reach_client::ReachError;
use crate::fault::FaultGate;
use crate::identity;

/// Forwards TTL reports to their checks' runners.
pub struct CheckClient {
    channels: Arc<PeerChannels>,
    gate: Arc<FaultGate>,
}

impl CheckClient {
    /// A client over `channels`, through `gate`.
    pub fn new(channels: Arc<PeerChannels>, gate: Arc<FaultGate>) -> Self {
        CheckClient { channels, gate }
    }

    /// Sends `report` to `to`; whether `to` runs the check and took it. Bounded by `timeout`.
    pub async fn report(&self, to: &MemberRecord, report: CheckReport, timeout: Duration) -> Result<bool, ReachError> {
        let call = async {
            let (id, dc) = (identity::member_id(&to.peer_url), DcName(to.dc.clone()));
            self.gate.outbound(id, &dc).await.map_err(|_| ReachError::Undelivered)?;
            let channel = self.channels.get(&to.peer_url).map_err(ReachError::Channel)?;
            let mut req = tonic::Request::new(report);
            req.set_timeout(timeout);
            let accepted = PeerClient::new(channel).report_check(req).await.map_err(ReachError::Call)?.into_inner();
            self.gate.inbound(id, &dc).await.map_err(|_| ReachError::Undelivered)?;
            Ok(accepted.accepted)
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| Err(ReachError::Call(tonic::Status::deadline_exceeded("no answer in time"))))
    }
}
