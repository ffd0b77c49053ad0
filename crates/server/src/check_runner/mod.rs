//! Check runners (issue 26): every member runs the health checks of the instances assigned to it (same zone,
//! else same datacenter, rendezvous hashing over the live members: `meridian_registry::assign`), and publishes
//! only their state changes through the log, batched and rate-limited.
//!
//! The protocol core does no I/O: [`core::RunnerCore`] is fed the catalog, the live members ([`members`]),
//! probe results, TTL reports and `now`, and returns what to do (probe this, publish these writes, deregister
//! that). Around it, [`driver`] is the one task with timers and sockets; [`probe`] performs HTTP, TCP and gRPC
//! probes over the member's network. TTL reports reach a check's runner wherever they arrive ([`relay`], over
//! the [`inbox`] locally or the peer service's `ReportCheck` remotely, on the [`wire`]); the runner answers one
//! only once its effect is in the store ([`waiting`]).

pub mod core;
pub mod driver;
pub mod inbox;
pub mod members;
pub mod probe;
pub mod relay;
pub mod waiting;
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;

pub use self::core::{ProbeOrder, ProbeResult, RunnerConfig, RunnerCore, TtlReport};
pub use inbox::{Delivery, Inbox, inbox};

/// What the runner has done on this member, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Checks this member runs now.
    pub checks_run: AtomicU64,
    /// Probes started.
    pub probes: AtomicU64,
    /// TTL reports fed to a check's machine.
    pub reports: AtomicU64,
    /// Batches of check states written through the log.
    pub publishes: AtomicU64,
    /// Check state changes written through the log.
    pub changes_published: AtomicU64,
    /// Instances deregistered for staying critical.
    pub deregistrations: AtomicU64,
}
