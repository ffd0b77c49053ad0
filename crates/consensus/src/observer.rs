//! The hook through which applied watch events and lease changes leave the consensus layer.

use meridian_proto::mvccpb::Event;
use meridian_types::{LeaseId, Revision};

/// A change to the set of leases, as one applied command made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// A lease was granted with this TTL in seconds.
    Granted {
        /// The new lease.
        id: LeaseId,
        /// Its TTL in seconds.
        ttl: i64,
    },
    /// A lease was revoked (or a revoke found it already gone).
    Revoked(LeaseId),
}

/// Receives what every applied command changed.
pub trait ApplyObserver: Send + Sync + 'static {
    /// Called after each applied command that produced events, in log order, from one task.
    /// Called only after the batch containing the command has been committed to the kv store, so
    /// a watcher reacting to the event can already read the new state.
    fn on_events(&self, revision: Revision, events: &[Event]);

    /// Called after each applied lease grant or revoke, in log order, on every member, after the kv store
    /// holds the change. Whoever keeps lease timers learns of a lease here whichever member proposed it and
    /// whether or not the proposer heard the outcome.
    fn on_lease(&self, _change: LeaseChange) {}
}

/// An observer that ignores everything (for tools and tests that do not watch).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ApplyObserver for NoopObserver {
    fn on_events(&self, _revision: Revision, _events: &[Event]) {}
}
