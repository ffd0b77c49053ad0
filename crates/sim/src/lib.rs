//! Deterministic simulation support for Meridian. This part is pure and does no I/O: the [`history`] a
//! simulation run records, and the [`checker`] that judges it (linearizability per key with unknown
//! outcomes, revision order, watch streams, leases, liveness).

pub mod checker;
pub mod display;
mod fnv;
pub mod history;
pub mod key_range;

#[cfg(test)]
mod tests;
