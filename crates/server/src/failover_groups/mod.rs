//! Failover groups of the user's services, on a member: which groups exist ([`catalog`]: the topology's and
//! the admin API's), what the store says of them ([`store`]), the writes ([`commands`]), the leader's loop that
//! switches them ([`driver`]) and tells their hooks ([`delivery`] through a [`hooks::HookRunner`]), and what
//! the admin API does with them ([`ops`], [`report`]). The decisions themselves are `meridian_failover`'s.

pub mod catalog;
pub mod commands;
pub mod delivery;
pub mod driver;
pub mod hooks;
pub mod ops;
pub mod report;
pub mod store;

use std::sync::Arc;

pub use catalog::{Catalog, Source};
pub use hooks::{HookRunner, ProcessHooks, RecordingHooks};
pub use report::{ActiveView, FailoverReport, GroupReport};

use crate::clock::Clock;

/// What every part of a member that deals with failover groups shares: the catalog and the wall clock the
/// records are stamped with.
#[derive(Clone, Debug)]
pub struct FailoverGroups {
    catalog: Arc<Catalog>,
    clock: Clock,
}

impl FailoverGroups {
    /// Groups of `catalog`, stamped by `clock`.
    pub fn new(catalog: Catalog, clock: Clock) -> FailoverGroups {
        FailoverGroups { catalog: Arc::new(catalog), clock }
    }

    /// Which groups the topology defines, and the datacenters any group may list.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_unix_ms(&self) -> u64 {
        self.clock.unix_ms()
    }
}
