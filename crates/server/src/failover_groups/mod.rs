//! Failover groups of the user's services, on a member: what the store says of them ([`store`]), the writes
//! ([`commands`]), the leader's loop that switches them ([`driver`]) and tells their hooks ([`delivery`] through
//! a [`hooks::HookRunner`]), and what the admin API does with them ([`ops`], [`report`]). Which groups exist is
//! `crate::failover_catalog`'s (the member holds it); the decisions themselves are `meridian_failover`'s.

pub mod commands;
pub mod delivery;
pub mod driver;
pub mod hooks;
pub mod ops;
pub mod report;
pub mod store;

pub use crate::failover_catalog::{Catalog, FailoverGroups, Source};
pub use hooks::{HookRunner, ProcessHooks, RecordingHooks};
pub use report::{ActiveView, FailoverReport, GroupReport};
