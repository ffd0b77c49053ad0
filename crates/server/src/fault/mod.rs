//! WAN and fault emulation for local runs and drills. [`Faults`] is the pure description of the emulated
//! network (per-DC-pair round-trip times, loss and blocked links from [`WanConfig`], plus isolated members and
//! isolated datacenters) and [`Faults::decide`] is the pure per-message decision. [`FaultState`] shares the
//! current faults between the admin API (which replaces them at run time) and [`FaultyTransport`], which wraps
//! the real peer transport and applies each verdict: sleep, then deliver; or fail like a broken network.

mod rng;
mod state;
mod transport;

pub use meridian_types::wan::{LinkSpec, WanConfig};
pub use rng::SeededRng;
pub use state::{FaultState, Faults, FaultsError, Verdict};
pub use transport::FaultyTransport;

use crate::config::ServerConfig;
use crate::error::{Error, Result};

/// The faults a member starts with: the `[wan]` links of its topology file, when it has one.
pub fn initial_faults(config: &ServerConfig) -> Result<FaultState> {
    let wan = match &config.topology {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("topology {}: {e}", path.display())))?;
            meridian_types::topology::Topology::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
                .wan
        }
        None => WanConfig::default(),
    };
    if !wan.links.is_empty() {
        tracing::info!(links = wan.links.len(), "emulating WAN links from the topology on peer traffic");
    }
    FaultState::new(Faults::from_wan(wan)).map_err(|e| Error::Config(format!("topology [wan]: {e}")))
}
