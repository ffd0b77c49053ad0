//! Raft timing: the LAN and WAN presets, and explicit heartbeat and election timeouts that override them.

use serde::{Deserialize, Serialize};

/// Named timing presets for Raft heartbeats and elections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingPreset {
    /// Members within one metro area: 100 ms heartbeat, 1 s election timeout (etcd's defaults).
    #[default]
    Lan,
    /// Members across regions: 250 ms heartbeat, 2.5 s election timeout.
    Wan,
}

/// Raft timing, either from a preset or given explicitly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// The preset that supplies any value not given explicitly.
    pub preset: TimingPreset,
    /// Leader heartbeat interval in milliseconds.
    pub heartbeat_ms: Option<u64>,
    /// Minimum election timeout in milliseconds; the maximum is twice this.
    pub election_ms: Option<u64>,
}

impl TimingConfig {
    /// The effective heartbeat interval.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms.unwrap_or(match self.preset {
            TimingPreset::Lan => 100,
            TimingPreset::Wan => 250,
        })
    }

    /// The effective minimum election timeout.
    pub fn election_ms(&self) -> u64 {
        self.election_ms.unwrap_or(match self.preset {
            TimingPreset::Lan => 1000,
            TimingPreset::Wan => 2500,
        })
    }

    /// etcd's minimum lease TTL: one and a half election timeouts, rounded up to whole seconds.
    pub fn min_lease_ttl_secs(&self) -> i64 {
        let ms = self.election_ms() * 3 / 2;
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX)
    }
}
