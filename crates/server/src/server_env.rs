//! What a member runs on: the network, the disk, the clock and the seeds, which the simulation replaces.

use std::sync::Arc;

use meridian_consensus::Disk;
use meridian_types::Topology;

use crate::clock::Clock;
use crate::failover_groups::{HookRunner, ProcessHooks};
use crate::net::{Network, TcpNetwork};
use crate::planted::PlantedBug;

/// What a member runs on: its network, its disk and its clock. A real server takes the defaults
/// (TCP, the configured data directory, the true clock); the simulation substitutes each.
pub struct ServerEnv {
    /// Listening and dialling (the admin HTTP listener always uses TCP).
    pub net: Arc<dyn Network>,
    /// Storage; `None` = the data directory of the config.
    pub disk: Option<Arc<dyn Disk>>,
    /// The clock of the lease timer and the placement driver.
    pub clock: Clock,
    /// Seed of the fault-emulation randomness; `None` = derived from the member id.
    pub fault_seed: Option<u64>,
    /// The cluster topology itself, instead of the file named by the config.
    pub topology: Option<Topology>,
    /// A deliberate bug for the simulation's checker to find; [`PlantedBug::None`] otherwise.
    pub planted_bug: PlantedBug,
    /// Seed of the authenticator's salts and tokens, which also hashes passwords inline; `None` (a real
    /// server) draws them from the operating system and hashes on blocking threads.
    pub auth_seed: Option<u64>,
    /// Send a constant HTTP `date` header instead of hyper's wall-clock one, so responses do not
    /// depend on the real time (the simulation's replay needs byte-identical traffic; gRPC clients
    /// ignore the header).
    pub fixed_date_header: bool,
    /// What calls the failover groups' hooks: webhooks and commands in a real server
    /// ([`ProcessHooks`]), a recording fake in the simulation.
    pub hook_runner: Arc<dyn HookRunner>,
}

impl Default for ServerEnv {
    fn default() -> Self {
        ServerEnv {
            net: Arc::new(TcpNetwork),
            disk: None,
            clock: Clock::new(),
            fault_seed: None,
            topology: None,
            planted_bug: PlantedBug::None,
            auth_seed: None,
            fixed_date_header: false,
            hook_runner: Arc::new(ProcessHooks),
        }
    }
}
