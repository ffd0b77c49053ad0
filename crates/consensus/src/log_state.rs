//! What the log store and its writer share: the log's tables in the database, the in-memory state (recent
//! entries, vote, committed and purged ids) and the counters the writer keeps. The store reads it, the writer
//! ([`crate::log_writer`]) mutates it; neither owns the other's half.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use redb::{Database, TableDefinition};

use crate::fsutil::DropSignal;
use crate::page_journal::CommitHook;
use crate::types::{Entry, LogId, Vote};

/// index -> bincode-encoded entry.
pub(crate) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// Singletons: vote, committed log id, last purged log id.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(crate) const KEY_VOTE: &str = "vote";
pub(crate) const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_PURGED: &str = "last_purged";

/// Convert any redb error into the `io::Error` openraft expects.
pub(crate) fn sto<E: Into<redb::Error>>(e: E) -> io::Error {
    io::Error::other(e.into())
}

/// Most entries kept in the cache once synced.
const CACHE_MAX_ENTRIES: usize = 10_000;
/// Most encoded bytes kept in the cache once synced.
const CACHE_MAX_BYTES: usize = 64 << 20;

/// One cached entry.
pub(crate) struct Cached {
    pub(crate) entry: Entry,
    /// Encoded size, for the cache budget.
    bytes: usize,
    /// On disk: may be evicted.
    pub(crate) synced: bool,
}

/// The in-memory copy of recent entries, by index.
#[derive(Default)]
pub(crate) struct EntryCache {
    entries: BTreeMap<u64, Cached>,
    bytes: usize,
}

impl EntryCache {
    /// Adds freshly appended (not yet synced) entries; an entry at an index already cached
    /// replaces it and everything after it, like a truncate.
    pub(crate) fn append(&mut self, entries: Vec<(Entry, usize)>) {
        if let Some((first, _)) = entries.first() {
            self.remove_from(first.log_id.index());
        }
        for (entry, bytes) in entries {
            self.bytes += bytes;
            self.entries.insert(entry.log_id.index(), Cached { entry, bytes, synced: false });
        }
    }

    /// Drops every entry with index >= `from`.
    pub(crate) fn remove_from(&mut self, from: u64) {
        let removed = self.entries.split_off(&from);
        self.bytes -= removed.values().map(|c| c.bytes).sum::<usize>();
    }

    /// Drops every entry with index <= `upto`.
    pub(crate) fn remove_upto(&mut self, upto: u64) {
        let keep = self.entries.split_off(&upto.saturating_add(1));
        let removed = std::mem::replace(&mut self.entries, keep);
        self.bytes -= removed.values().map(|c| c.bytes).sum::<usize>();
    }

    /// Marks `log_id` synced if the cache still holds that very entry (a truncate and re-append
    /// may have replaced it).
    pub(crate) fn mark_synced(&mut self, log_id: &LogId) {
        if let Some(c) = self.entries.get_mut(&log_id.index())
            && c.entry.log_id == *log_id
        {
            c.synced = true;
        }
    }

    /// Evicts the oldest synced entries while over budget.
    pub(crate) fn evict(&mut self) {
        while self.entries.len() > CACHE_MAX_ENTRIES || self.bytes > CACHE_MAX_BYTES {
            let Some(first) = self.entries.first_entry() else { return };
            if !first.get().synced {
                return;
            }
            self.bytes -= first.remove().bytes;
        }
    }

    /// Copies of the cached entries in `[start, end)`.
    pub(crate) fn copy_range(&self, start: u64, end: u64) -> BTreeMap<u64, Entry> {
        self.entries.range(start..end).map(|(k, c)| (*k, c.entry.clone())).collect()
    }
}

/// What the log looks like right now, including writes not yet synced.
#[derive(Default)]
pub(crate) struct MemState {
    /// Recent entries, including every one whose transaction has not been synced yet.
    pub(crate) cache: EntryCache,
    pub(crate) last_log_id: Option<LogId>,
    pub(crate) last_purged: Option<LogId>,
    pub(crate) vote: Option<Vote>,
    pub(crate) committed: Option<LogId>,
}

/// State shared by the store, its readers and the writer thread.
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) mem: Mutex<MemState>,
    /// Number of write transactions (= fsyncs) the writer has committed.
    pub(crate) txns: AtomicU64,
    /// Where the writer arms the completion of each transaction (see `log_writer`).
    pub(crate) hook: Arc<CommitHook>,
    /// Set once a commit failed after it was made durable (see `log_writer::flush`), with that failure's text:
    /// every later write is refused with it.
    pub(crate) failed_after_durable: Mutex<Option<String>>,
    /// Entries up to this index are purged but may still be on disk (see `log_writer`).
    pub(crate) purge_backlog: Mutex<Option<u64>>,
    /// Last field: fires once the database above has been closed.
    pub(crate) _dropped: DropSignal,
}

#[cfg(test)]
mod tests {
    use openraft::testing::blank_ent;

    use super::*;
    use crate::types::TypeConfig;

    fn cache_with(n: u64) -> EntryCache {
        let mut cache = EntryCache::default();
        cache.append((1..=n).map(|i| (blank_ent::<TypeConfig>(1, 1, i), 10)).collect());
        cache
    }

    fn indexes(cache: &EntryCache) -> (Option<u64>, Option<u64>, usize) {
        (cache.entries.keys().next().copied(), cache.entries.keys().last().copied(), cache.bytes)
    }

    #[test]
    fn only_synced_entries_are_evicted_oldest_first() {
        let n = CACHE_MAX_ENTRIES as u64 + 10;
        let mut cache = cache_with(n);
        cache.evict();
        assert_eq!(indexes(&cache), (Some(1), Some(n), n as usize * 10), "unsynced entries stay");
        for i in 1..=5 {
            cache.mark_synced(&blank_ent::<TypeConfig>(1, 1, i).log_id);
        }
        cache.evict();
        assert_eq!(indexes(&cache).0, Some(6), "evicts synced entries, stops at the first unsynced one");
        for i in 6..=n {
            cache.mark_synced(&blank_ent::<TypeConfig>(1, 1, i).log_id);
        }
        cache.evict();
        assert_eq!(indexes(&cache), (Some(11), Some(n), CACHE_MAX_ENTRIES * 10));
    }

    #[test]
    fn truncate_purge_and_reappend_keep_the_cache_exact() {
        let mut cache = cache_with(10);
        cache.remove_from(8);
        cache.remove_upto(2);
        assert_eq!(indexes(&cache), (Some(3), Some(7), 50));
        // A re-append at an index already cached replaces it and what follows.
        cache.append(vec![(blank_ent::<TypeConfig>(2, 1, 6), 7)]);
        assert_eq!(indexes(&cache), (Some(3), Some(6), 37));
        // The old term's entry at 6 is gone, so marking it synced changes nothing.
        cache.mark_synced(&blank_ent::<TypeConfig>(1, 1, 6).log_id);
        assert!(!cache.entries[&6].synced);
        assert_eq!(cache.copy_range(5, 100).keys().copied().collect::<Vec<_>>(), vec![5, 6]);
    }
}
