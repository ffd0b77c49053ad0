//! WAN and fault emulation for local runs and drills. [`Faults`] is the pure description of the emulated
//! network (per-DC-pair round-trip times, loss and blocked links from [`WanConfig`], plus isolated members and
//! isolated datacenters) and [`Faults::decide`] is the pure per-message decision. [`FaultState`] shares the
//! current faults between the admin API (which replaces them at run time) and [`FaultGate`], which applies each
//! verdict to one member's outgoing messages: sleep, then deliver; or fail like a broken network.
//! [`FaultyTransport`] puts the gate in front of the consensus transport; the leader client (forwarded writes,
//! ReadIndex, lease calls) crosses the same gate.

mod delay_line;
mod faulty_transport;
mod gate;
mod state;

pub use faulty_transport::FaultyTransport;
pub use gate::{FaultGate, Undelivered};
pub use meridian_types::wan::{LinkSpec, WanConfig};
pub use state::{FaultState, Faults, FaultsError, Verdict};

use meridian_types::topology::Topology;

use crate::error::{Error, Result};

/// The faults a member starts with: the `[wan]` links of its topology, when it has one.
pub fn initial_faults(topology: Option<&Topology>) -> Result<FaultState> {
    let wan = topology.map(|t| t.wan.clone()).unwrap_or_default();
    if !wan.links.is_empty() {
        tracing::info!(links = wan.links.len(), "emulating WAN links from the topology on peer traffic");
    }
    FaultState::new(Faults::from_wan(wan)).map_err(|e| Error::Config(format!("topology [wan]: {e}")))
}
