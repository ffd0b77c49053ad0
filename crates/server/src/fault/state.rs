//! The emulated network as plain data, and the pure per-message decision. No clock and no randomness live
//! here: the caller passes a uniform random number in, so every decision is reproducible and table-testable.

use std::collections::BTreeSet;
use std::time::Duration;

use meridian_types::wan::{LinkSpec, WanConfig};
use meridian_types::{DcName, NodeId};
use parking_lot::RwLock;

/// Largest accepted round-trip time: anything longer is a typo, and would stall Raft beyond any timeout.
pub const MAX_RTT_MS: u64 = 60_000;

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Delivered after `delay` (half the link's round-trip time).
    Deliver {
        /// One-way delay to apply before delivery.
        delay: Duration,
    },
    /// Lost on a lossy link.
    Drop,
    /// Not deliverable: the link is cut, or one end is isolated.
    Block,
}

/// Why a fault description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    /// A link names an empty datacenter.
    #[error("link {index}: `from` and `to` must name datacenters")]
    EmptyDc {
        /// Position of the link in the list.
        index: usize,
    },
    /// Loss outside [0, 1].
    #[error("link {from} -> {to}: loss {loss} must be between 0 and 1")]
    BadLoss {
        /// One end.
        from: DcName,
        /// The other end.
        to: DcName,
        /// The rejected value.
        loss: String,
    },
    /// Round-trip time beyond [`MAX_RTT_MS`].
    #[error("link {from} -> {to}: rtt_ms {rtt_ms} exceeds the maximum of {MAX_RTT_MS}")]
    RttTooLarge {
        /// One end.
        from: DcName,
        /// The other end.
        to: DcName,
        /// The rejected value.
        rtt_ms: u64,
    },
    /// Two links describe the same direction, so which one applies would be ambiguous.
    #[error("links {first} and {second} both describe traffic {from} -> {to}")]
    Duplicate {
        /// Position of the first link.
        first: usize,
        /// Position of the second link.
        second: usize,
        /// Sender datacenter.
        from: DcName,
        /// Receiver datacenter.
        to: DcName,
    },
}

/// The whole emulated network: links between datacenters plus partitions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Per-link round-trip time, loss and cuts. Unlisted links are perfect.
    pub wan: WanConfig,
    /// Members cut off from every other member (in both directions).
    pub isolated_members: BTreeSet<NodeId>,
    /// Datacenters cut off from every other datacenter; members inside one still reach each other.
    pub isolated_dcs: BTreeSet<DcName>,
}

impl Faults {
    /// Faults with only the given WAN links (no partitions).
    pub fn from_wan(wan: WanConfig) -> Self {
        Faults { wan, ..Default::default() }
    }

    /// Checks values and that no two links claim the same direction.
    pub fn validate(&self) -> Result<(), FaultsError> {
        let links = &self.wan.links;
        for (index, l) in links.iter().enumerate() {
            if l.from.0.is_empty() || l.to.0.is_empty() {
                return Err(FaultsError::EmptyDc { index });
            }
            if !(0.0..=1.0).contains(&l.loss) {
                return Err(FaultsError::BadLoss { from: l.from.clone(), to: l.to.clone(), loss: l.loss.to_string() });
            }
            if l.rtt_ms > MAX_RTT_MS {
                return Err(FaultsError::RttTooLarge { from: l.from.clone(), to: l.to.clone(), rtt_ms: l.rtt_ms });
            }
        }
        // A link written in one direction may override a symmetric one written the other way round (that is
        // how an asymmetric cut is laid over the RTT matrix); anything else claiming the same direction twice
        // would be ambiguous.
        for (i, a) in links.iter().enumerate() {
            for (j, b) in links.iter().enumerate().skip(i + 1) {
                let same = a.from == b.from && a.to == b.to;
                let both_ways = a.symmetric && b.symmetric && a.from == b.to && a.to == b.from;
                if same || both_ways {
                    return Err(FaultsError::Duplicate { first: i, second: j, from: a.from.clone(), to: a.to.clone() });
                }
            }
        }
        Ok(())
    }

    /// The link governing traffic `from_dc` → `to_dc`: one written in that direction wins over a symmetric
    /// one written the other way round.
    pub fn link(&self, from_dc: &DcName, to_dc: &DcName) -> Option<&LinkSpec> {
        let links = &self.wan.links;
        links
            .iter()
            .find(|l| &l.from == from_dc && &l.to == to_dc)
            .or_else(|| links.iter().find(|l| l.symmetric && &l.from == to_dc && &l.to == from_dc))
    }

    /// Decides the fate of one message from member `from` (in `from_dc`) to member `to` (in `to_dc`).
    /// `random` is uniform in [0, 1); the message is lost when it falls below the link's loss rate.
    pub fn decide(&self, from_dc: &DcName, to_dc: &DcName, from: NodeId, to: NodeId, random: f64) -> Verdict {
        if from == to {
            return Verdict::Deliver { delay: Duration::ZERO };
        }
        if self.isolated_members.contains(&from) || self.isolated_members.contains(&to) {
            return Verdict::Block;
        }
        if from_dc != to_dc && (self.isolated_dcs.contains(from_dc) || self.isolated_dcs.contains(to_dc)) {
            return Verdict::Block;
        }
        match self.link(from_dc, to_dc) {
            None => Verdict::Deliver { delay: Duration::ZERO },
            Some(l) if l.blocked => Verdict::Block,
            Some(l) if random < l.loss => Verdict::Drop,
            // Half the round trip each way, in microseconds so odd RTTs are not rounded away.
            Some(l) => Verdict::Deliver { delay: Duration::from_micros(l.rtt_ms.saturating_mul(500)) },
        }
    }
}

/// The current faults, shared between the transport (reads on every message) and the admin API (replaces).
#[derive(Debug, Default)]
pub struct FaultState {
    faults: RwLock<Faults>,
}

impl FaultState {
    /// Starts with `faults`, which must be valid.
    pub fn new(faults: Faults) -> Result<Self, FaultsError> {
        faults.validate()?;
        Ok(FaultState { faults: RwLock::new(faults) })
    }

    /// A copy of the current faults.
    pub fn get(&self) -> Faults {
        self.faults.read().clone()
    }

    /// Replaces every fault at once (validated first; on error nothing changes).
    pub fn set(&self, faults: Faults) -> Result<(), FaultsError> {
        faults.validate()?;
        *self.faults.write() = faults;
        Ok(())
    }

    /// [`Faults::decide`] on the current faults.
    pub fn decide(&self, from_dc: &DcName, to_dc: &DcName, from: NodeId, to: NodeId, random: f64) -> Verdict {
        self.faults.read().decide(from_dc, to_dc, from, to, random)
    }
}

#[cfg(test)]
mod tests;
