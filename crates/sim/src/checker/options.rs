//! Knobs of the history checks.

use serde::{Deserialize, Serialize};

/// Settings for [`check`](super::check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Search steps allowed per key before its linearizability verdict becomes Unknown.
    pub max_steps_per_key: u64,
    /// Simulated nanoseconds by which a lease may appear to expire early (clock skew, rounding of TTLs).
    pub lease_skew_allowance: u64,
    /// Whether to require that the final leader is in the expected datacenter.
    pub check_liveness: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { max_steps_per_key: 5_000_000, lease_skew_allowance: 1_000_000_000, check_liveness: true }
    }
}
