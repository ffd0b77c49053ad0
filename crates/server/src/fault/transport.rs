//! [`FaultyTransport`]: the peer transport wrapper that applies the emulated network to every message. A peer
//! message is a request with a reply, so the verdict is taken twice: once on the way there (before the inner
//! transport sends) and once on the way back (after the reply arrives), each with its own one-way delay.

use std::sync::Arc;

use async_trait::async_trait;
use meridian_consensus::{Error, Member, Result, Transport};
use meridian_types::{DcName, NodeId};
use parking_lot::Mutex;

use super::rng::SeededRng;
use super::state::{FaultState, Verdict};

/// Wraps the real transport of one member and delays, drops or blocks its messages per the current faults.
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    self_id: NodeId,
    self_dc: DcName,
    faults: Arc<FaultState>,
    rng: Mutex<SeededRng>,
}

impl FaultyTransport {
    /// Member `self_id` in `self_dc` sends through `inner`; loss decisions draw from `rng`, so a seed
    /// reproduces a run's losses.
    pub fn new(
        inner: Arc<dyn Transport>,
        self_id: NodeId,
        self_dc: DcName,
        faults: Arc<FaultState>,
        rng: SeededRng,
    ) -> Self {
        FaultyTransport { inner, self_id, self_dc, faults, rng: Mutex::new(rng) }
    }

    /// Applies the verdict for one direction: sleep for the delay, or fail like a broken network. The sleep is
    /// the emulated latency itself.
    async fn cross(&self, from: (&DcName, NodeId), to: (&DcName, NodeId), what: &str) -> Result<()> {
        let random = self.rng.lock().next_f64();
        match self.faults.decide(from.0, to.0, from.1, to.1, random) {
            Verdict::Deliver { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
            Verdict::Drop => Err(Error::Transport(format!(
                "emulated loss: {what} {:x} ({}) -> {:x} ({}) dropped",
                from.1.0, from.0, to.1.0, to.0
            ))),
            Verdict::Block => Err(Error::Transport(format!(
                "emulated partition: {what} {:x} ({}) -> {:x} ({}) blocked",
                from.1.0, from.0, to.1.0, to.0
            ))),
        }
    }
}

#[async_trait]
impl Transport for FaultyTransport {
    async fn send(&self, target: NodeId, member: &Member, payload: Vec<u8>) -> Result<Vec<u8>> {
        let target_dc = DcName(member.dc.clone());
        self.cross((&self.self_dc, self.self_id), (&target_dc, target), "request").await?;
        let reply = self.inner.send(target, member, payload).await?;
        // The reply is judged when it leaves the target, so a partition installed meanwhile loses it, as a
        // real network would after the target has already acted on the request.
        self.cross((&target_dc, target), (&self.self_dc, self.self_id), "reply").await?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests;
