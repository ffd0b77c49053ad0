//! Consul's JSON shapes, so that existing Consul clients (python3-consul, Prometheus, curl scripts) work
//! unchanged: the request bodies of the agent API in, converted to the model ([`parse_register`],
//! [`parse_check_register`], [`parse_check_update`]), and the answers of the health, catalog and agent
//! endpoints out ([`health_entry`], [`catalog_service`], [`agent_service`], [`agent_check`]).
//!
//! Incoming keys are matched case-insensitively, ignoring `_` and `-`, at every level of the structure but
//! not inside free-form maps (`Meta`, `Header`), as Consul does. Bodies above [`MAX_BODY_BYTES`] are
//! refused before parsing.
//!
//! Decisions the server inherits:
//! - A registration's node, datacenter, zone and lease come from the agent that takes it ([`AgentContext`]),
//!   as in Consul the registering agent's node does. The meta key [`ZONE_META_KEY`] overrides the zone.
//! - `DisableRedirects` defaults to true: only an explicit `"DisableRedirects": false` makes an HTTP check
//!   follow redirects.
//! - Check types other than HTTP, TCP, gRPC and TTL (`Args`/`Script` script checks, docker, h2ping, udp,
//!   os_service, alias) are refused with [`crate::Error::UnsupportedCheck`] naming the type, as is a `Type`
//!   field naming an unknown one.
//! - Port 0 or a missing port is refused; an interval below one second is refused, not raised.

mod check;
mod normalize;
mod output;
mod register;
mod shapes;

use meridian_types::{DcName, LeaseId, ZoneName};

pub use output::{agent_check, agent_service, catalog_service, health_check, health_entry};
pub use register::{parse_check_register, parse_check_update, parse_register};
pub use shapes::{
    AgentService, CatalogService, CheckStates, HealthCheck, HealthEntry, Indexes, NodeOut, ServiceOut, WeightsOut,
};

use crate::name::NodeName;

/// The largest request body accepted (Consul's agent endpoints have no documented limit; a registration with
/// every limit reached is well below this).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// The meta key that sets an instance's zone when the agent's is not the instance's.
pub const ZONE_META_KEY: &str = "meridian-zone";

/// Who takes a registration through the agent API: the member acting as Consul's agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentContext {
    /// The node name registrations get (the member's name).
    pub node: NodeName,
    /// The node's address, used when a registration gives none.
    pub node_address: String,
    /// The member's datacenter.
    pub dc: DcName,
    /// The member's zone, the instances' default zone.
    pub zone: Option<ZoneName>,
    /// The lease to bind registrations to, if the server binds them.
    pub lease: Option<LeaseId>,
}

#[cfg(test)]
mod tests;
