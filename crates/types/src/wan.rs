//! WAN emulation settings: round-trip times, loss and blocked links between datacenters. The peer transport
//! applies them to member-to-member traffic, so a cluster on one machine behaves like one spread over several
//! sites. They come from the topology file and can be changed at run time through the admin API (only when the
//! server runs with `--enable-fault-injection`).

use serde::{Deserialize, Serialize};

use crate::DcName;

/// The emulated network between datacenters. Links not listed are perfect (no delay, no loss).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WanConfig {
    /// Per-link behaviour.
    pub links: Vec<LinkSpec>,
}

/// How traffic between two datacenters behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end of the link.
    pub from: DcName,
    /// The other end.
    pub to: DcName,
    /// Emulated round-trip time in milliseconds; each direction is delayed by half.
    #[serde(default)]
    pub rtt_ms: u64,
    /// Probability in [0, 1] that a message on this link is dropped.
    #[serde(default)]
    pub loss: f64,
    /// Whether the link is cut (a partition).
    #[serde(default)]
    pub blocked: bool,
    /// Whether the settings apply in both directions (the default) or only `from` → `to`.
    #[serde(default = "default_true")]
    pub symmetric: bool,
}

fn default_true() -> bool {
    true
}
