//! The hook through which applied watch events leave the consensus layer.

use meridian_proto::mvccpb::Event;
use meridian_types::Revision;

/// Receives the watch events of every applied command.
pub trait ApplyObserver: Send + Sync + 'static {
    /// Called after each applied command that produced events, in log order, from one task.
    /// Called only after the batch containing the command has been committed to the kv store, so
    /// a watcher reacting to the event can already read the new state.
    fn on_events(&self, revision: Revision, events: &[Event]);
}

/// An observer that ignores everything (for tools and tests that do not watch).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ApplyObserver for NoopObserver {
    fn on_events(&self, _revision: Revision, _events: &[Event]) {}
}
