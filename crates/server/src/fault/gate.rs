//! [`FaultGate`]: one member's side of the emulated network. Every message this member sends to a peer crosses
//! it on the way out and its answer crosses it on the way back, each with its own verdict. Both the consensus
//! transport ([`super::FaultyTransport`]) and the calls a non-leader makes to the leader (forwarded writes,
//! ReadIndex, lease calls) go through the same gate, so all member-to-member traffic sees the same WAN.

use std::sync::Arc;
use std::time::Duration;

use meridian_types::{DcName, NodeId};
use parking_lot::Mutex;

use super::state::{FaultState, Verdict};
use meridian_types::SplitMix64;

/// A message the emulated network did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undelivered {
    /// Lost on a lossy link.
    #[error("emulated loss: {0}")]
    Dropped(String),
    /// The link is cut or an end is isolated.
    #[error("emulated partition: {0}")]
    Blocked(String),
}

/// Applies the current faults to the messages of one member.
pub struct FaultGate {
    self_id: NodeId,
    self_dc: DcName,
    faults: Arc<FaultState>,
    rng: Mutex<SplitMix64>,
}

impl FaultGate {
    /// The gate of member `self_id` in `self_dc`; loss decisions draw from `rng`, so a seed reproduces a run.
    pub fn new(self_id: NodeId, self_dc: DcName, faults: Arc<FaultState>, rng: SplitMix64) -> Self {
        FaultGate { self_id, self_dc, faults, rng: Mutex::new(rng) }
    }

    /// The faults this gate applies.
    pub fn faults(&self) -> &Arc<FaultState> {
        &self.faults
    }

    /// A request from this member to `target` (in `target_dc`) crosses the network: waits out the one-way
    /// delay (the emulated latency itself) or fails like a broken network.
    pub async fn outbound(&self, target: NodeId, target_dc: &DcName) -> Result<(), Undelivered> {
        self.cross((&self.self_dc, self.self_id), (target_dc, target), "request").await
    }

    /// The reply from `target` crosses back. Judged when the reply leaves, so a partition installed meanwhile
    /// loses it, as a real network would after the target has already acted on the request.
    pub async fn inbound(&self, target: NodeId, target_dc: &DcName) -> Result<(), Undelivered> {
        self.cross((target_dc, target), (&self.self_dc, self.self_id), "reply").await
    }

    /// The verdict on one message of an ordered stream from this member to `target`: how long it is in flight,
    /// or why it is lost. Judged without waiting, so a stream can have many messages in flight at once.
    pub fn judge_outbound(&self, target: NodeId, target_dc: &DcName) -> Result<Duration, Undelivered> {
        self.judge((&self.self_dc, self.self_id), (target_dc, target), "stream message")
    }

    /// The verdict on one message of an ordered stream from `target` back to this member.
    pub fn judge_inbound(&self, target: NodeId, target_dc: &DcName) -> Result<Duration, Undelivered> {
        self.judge((target_dc, target), (&self.self_dc, self.self_id), "stream reply")
    }

    async fn cross(&self, from: (&DcName, NodeId), to: (&DcName, NodeId), what: &str) -> Result<(), Undelivered> {
        let delay = self.judge(from, to, what)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    fn judge(&self, from: (&DcName, NodeId), to: (&DcName, NodeId), what: &str) -> Result<Duration, Undelivered> {
        let random = self.rng.lock().unit();
        let describe = || format!("{what} {:x} ({}) -> {:x} ({})", from.1.0, from.0, to.1.0, to.0);
        match self.faults.decide(from.0, to.0, from.1, to.1, random) {
            Verdict::Deliver { delay } => Ok(delay),
            Verdict::Drop => Err(Undelivered::Dropped(describe())),
            Verdict::Block => Err(Undelivered::Blocked(describe())),
        }
    }
}
