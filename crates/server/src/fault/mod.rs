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
