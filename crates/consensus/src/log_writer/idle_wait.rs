//! How the writer thread waits for its next batch: block, or spin briefly first.
//!
//! Blocking on the queue parks the thread, and the next append has to wake it. On the virtual
//! machines we run on an idle vCPU halts at once (the guest's halt polling is off), so waking a
//! parked thread costs a VM exit and the host's scheduling, 60–90 µs measured on the one-node
//! put-1 path, where one fsync is ~130 µs. Go's scheduler spins before it parks, which is why etcd
//! does not pay this. So when writes come one at a time and close together, the writer polls the
//! queue for a short window, yielding the CPU on every turn so that any runnable thread goes
//! first, and only then blocks.
//!
//! Spinning is only worth it when it is both needed and likely to pay off:
//! - needed: a batch of more than one entry means appends queue up while the writer syncs, so the
//!   thread rarely parks, and a late wake-up even grows the next batch (fewer syncs under load);
//! - likely: a wait longer than the window would not have been caught by spinning, so after one
//!   the writer blocks until a short wait shows writes are close together again.
//!
//! An idle log, or one whose writes come further apart than the window, therefore never spins; one
//! taking single writes closer together than that spends the gaps polling (measured at 1500
//! one-client puts/s: about twice the CPU per put, on CPUs that were otherwise idle).

use std::time::Duration;

/// How long the writer polls before it blocks. A one-client put on three members comes back
/// to the writer ~0.5–0.8 ms after its previous commit (the rest of the round trip, including
/// the other members' work); on one node ~0.2–0.3 ms.
pub(crate) const SPIN_WINDOW: Duration = Duration::from_micros(800);

/// What a batch the writer took says about how writes are coming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Only committed-id updates: nobody waits for them, and each follows a commit closely, so
    /// they say nothing about the next write (letting them count would keep slow writers spinning).
    OnlyCommittedIds,
    /// Writes someone waits for, appending this many log entries in all.
    Writes { appended_entries: usize },
}

/// The writer's waiting mode, decided after each wait from what that wait and its batch showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdleWait {
    /// Park on the queue until an operation arrives.
    Block,
    /// Poll the queue (yielding the CPU between polls) for up to [`SPIN_WINDOW`], then park.
    Spin,
}

impl IdleWait {
    /// The mode for the next wait, given how long the last one took until its first operation
    /// arrived and what the batch it started held.
    pub(crate) fn next(self, waited: Duration, batch: Batch) -> IdleWait {
        match batch {
            Batch::OnlyCommittedIds => self,
            Batch::Writes { appended_entries } if appended_entries <= 1 && waited <= SPIN_WINDOW => IdleWait::Spin,
            Batch::Writes { .. } => IdleWait::Block,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_micros(200);
    const LONG: Duration = Duration::from_millis(5);

    fn writes(appended_entries: usize) -> Batch {
        Batch::Writes { appended_entries }
    }

    #[test]
    fn single_entries_close_together_spin() {
        assert_eq!(IdleWait::Block.next(SHORT, writes(1)), IdleWait::Spin);
        assert_eq!(IdleWait::Spin.next(SHORT, writes(1)), IdleWait::Spin);
        // A batch with no entries (a vote, a truncation) is not load either.
        assert_eq!(IdleWait::Spin.next(SHORT, writes(0)), IdleWait::Spin);
        assert_eq!(IdleWait::Spin.next(SPIN_WINDOW, writes(1)), IdleWait::Spin);
    }

    #[test]
    fn a_wait_the_window_would_not_catch_blocks() {
        assert_eq!(IdleWait::Spin.next(LONG, writes(1)), IdleWait::Block);
        assert_eq!(IdleWait::Spin.next(SPIN_WINDOW + Duration::from_micros(1), writes(0)), IdleWait::Block);
        assert_eq!(IdleWait::Block.next(LONG, writes(0)), IdleWait::Block);
    }

    #[test]
    fn batches_of_several_entries_block() {
        assert_eq!(IdleWait::Spin.next(SHORT, writes(2)), IdleWait::Block);
        assert_eq!(IdleWait::Block.next(Duration::ZERO, writes(64)), IdleWait::Block);
    }

    #[test]
    fn committed_ids_alone_leave_the_mode_as_it_was() {
        // A writer taking one put every few milliseconds: the put's long wait chose Block, and the
        // committed id arriving right after its commit must not switch polling back on.
        assert_eq!(IdleWait::Block.next(SHORT, Batch::OnlyCommittedIds), IdleWait::Block);
        assert_eq!(IdleWait::Spin.next(LONG, Batch::OnlyCommittedIds), IdleWait::Spin);
    }
}
