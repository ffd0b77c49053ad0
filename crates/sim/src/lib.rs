//! Deterministic simulation of whole Meridian clusters. The [`runner`] builds a seeded turmoil world of
//! members running the real server ([`cluster`]) on a simulated network ([`sim_net`]) and disk
//! ([`sim_disk`]), drives clients ([`workload`]) through mixed faults ([`faults`], [`membership`]) while recording the
//! [`history`] ([`recorder`]), and the [`checker`] judges it (linearizability per key with unknown
//! outcomes, revision order, watch streams, leases, liveness). The checker is pure and does no I/O.

pub mod auth_channel;
pub mod auth_ops;
pub mod auth_setup;
pub mod auth_workload;
pub mod checker;
pub mod cluster;
pub mod discovery_record;
pub mod discovery_truth;
pub mod discovery_workload;
pub mod display;
pub mod failover_watch;
pub mod faults;
mod fnv;
pub mod history;
pub mod key_range;
pub mod lock_workload;
pub mod membership;
pub mod planned_transfer;
pub mod recorder;
pub mod restart_readers;
pub mod rng;
pub mod runner;
pub mod sim_disk;
pub mod sim_net;
pub mod workload;

#[cfg(test)]
mod tests;
