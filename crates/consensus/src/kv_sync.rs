//! [`KvSync`]: making the state machine's kv store durable without stalling the apply path.
//!
//! The state machine commits the kv store without fsync (the Raft log is the durable record), so
//! now and then the commits so far must be made durable: before a snapshot lets openraft purge the
//! log, and every `SYNC_EVERY_ENTRIES` entries otherwise. Such a sync is one durable redb
//! transaction that writes back and syncs everything the commits since the last one left. redb
//! has one writer, so while a sync runs any other commit waits for it.
//!
//! Two things follow, both measured on three members sharing one virtio disk:
//! - A sync made on the apply path stopped applies, and with them every answer and watch event of
//!   the member, for the whole sync (76–145 ms after 100 000 entries); with one async worker it
//!   stopped the member. So a sync runs on a blocking thread, and while one runs the apply path
//!   leaves its changes in the kv store's pending overlay (reads see them) instead of committing,
//!   up to a bound. Syncs take turns through one lock, which a snapshot build takes *before* the
//!   kv store's lock, so it never holds the kv store while waiting for another sync.
//! - A sync's writeback is queued on the disk ahead of the Raft log's small fsyncs: Raft log
//!   transactions that take 5–8 ms took 80–85 ms during the syncs of 100 000 entries. Syncing
//!   every 10 000 entries keeps each burst a tenth of that, at no throughput cost we could measure.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::kv_backend::RedbBackend;

/// Shared by the state machine and its snapshot builders.
#[derive(Clone, Default)]
pub(crate) struct KvSync {
    /// Held for the whole of a sync; a snapshot build holds it from before its commit.
    turn: Arc<Mutex<()>>,
    /// Entries applied since the kv store was last made durable.
    unsynced_entries: Arc<AtomicU64>,
    /// A background sync is queued or running.
    background: Arc<AtomicBool>,
}

impl KvSync {
    /// Whether a sync holds (or is about to hold) redb's writer: someone has the turn. A snapshot
    /// build has it from before its own commit too, which only makes applies defer a little sooner.
    pub(crate) fn running(&self) -> bool {
        self.turn.is_locked()
    }

    /// Counts `n` more entries committed without a sync; returns the total since the last one.
    pub(crate) fn add_unsynced(&self, n: u64) -> u64 {
        self.unsynced_entries.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Everything is durable (a restore that was).
    pub(crate) fn reset(&self) {
        self.unsynced_entries.store(0, Ordering::Relaxed);
    }

    /// Takes this sync's turn, blocking until any other sync is done. Call on a blocking thread.
    pub(crate) fn take_turn(&self) -> SyncTurn<'_> {
        let guard = self.turn.lock();
        SyncTurn { sync: self, _guard: guard }
    }

    /// Claims the one slot for a background sync: `false` while one is queued or running.
    pub(crate) fn claim_background(&self) -> bool {
        !self.background.swap(true, Ordering::SeqCst)
    }

    /// Frees the slot [`KvSync::claim_background`] took.
    pub(crate) fn release_background(&self) {
        self.background.store(false, Ordering::SeqCst);
    }
}

/// The right to sync, held until dropped.
pub(crate) struct SyncTurn<'a> {
    sync: &'a KvSync,
    _guard: parking_lot::MutexGuard<'a, ()>,
}

impl SyncTurn<'_> {
    /// Makes every commit so far durable; the entries counted before it no longer count as
    /// unsynced. Applies leave their commits pending meanwhile.
    pub(crate) fn sync(&self, backend: &RedbBackend) -> io::Result<()> {
        let before = self.sync.unsynced_entries.load(Ordering::Relaxed);
        let res = backend.sync().map_err(io::Error::other);
        if res.is_ok() {
            let _ = self
                .sync
                .unsynced_entries
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(before)));
        }
        res
    }
}
