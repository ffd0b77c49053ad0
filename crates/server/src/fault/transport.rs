//! [`FaultyTransport`]: the consensus transport wrapper that applies the emulated network to every Raft
//! message. A peer message is a request with a reply, so the gate is crossed twice: on the way there (before
//! the inner transport sends) and on the way back (after the reply arrives), each with its own one-way delay.

use std::sync::Arc;

use async_trait::async_trait;
use meridian_consensus::{Error, Member, Result, Transport};
use meridian_types::{DcName, NodeId};

use super::gate::FaultGate;

/// Wraps the real transport of one member and delays, drops or blocks its messages per the current faults.
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    gate: Arc<FaultGate>,
}

impl FaultyTransport {
    /// Sends through `inner`, every message crossing `gate`.
    pub fn new(inner: Arc<dyn Transport>, gate: Arc<FaultGate>) -> Self {
        FaultyTransport { inner, gate }
    }
}

#[async_trait]
impl Transport for FaultyTransport {
    async fn send(&self, target: NodeId, member: &Member, payload: Vec<u8>) -> Result<Vec<u8>> {
        let target_dc = DcName(member.dc.clone());
        self.gate.outbound(target, &target_dc).await.map_err(|e| Error::Transport(e.to_string()))?;
        let reply = self.inner.send(target, member, payload).await?;
        self.gate.inbound(target, &target_dc).await.map_err(|e| Error::Transport(e.to_string()))?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests;
