//! The Raft log on redb (`<data_dir>/raft-log.redb`): openraft's `RaftLogStorage` and
//! `RaftLogReader`.
//!
//! Writes go through the group-commit writer thread (`log_writer`), or, on a disk that wants
//! blocking work inline (the simulation), through a writer task that waits out the disk's sync latency
//! (`Disk::log_sync_latencies`), or without one in the calling task. Appended entries are kept in
//! an in-memory cache: every entry until its transaction is synced (openraft requires entries to be
//! readable as soon as `append` returns, long before the fsync finishes), and after that the most
//! recent ones up to `CACHE_MAX_ENTRIES` / `CACHE_MAX_BYTES`, so applying and replicating recent
//! entries never reads redb. Only synced entries are evicted, oldest first; truncate and purge drop
//! their range from the cache too.
//!
//! Readers serve a range from the cache alone when it holds all of it. Otherwise they merge cache
//! and disk: they copy the cache *before* opening the read transaction, so an entry evicted in
//! between (which is synced by then) is seen in at least one of them.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use crate::codec::{decode, encode};
use crate::disk::{Disk, OsDisk, open_journaled_database};
use crate::fsutil::{DropSignal, DropWaiter};
use crate::log_state::{ENTRIES, EntryCache, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, META, MemState, Shared, sto};
use crate::log_writer::{self, WriteOp};
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// File name of the log database inside the data directory.
pub const LOG_FILE: &str = "raft-log.redb";
/// File name of the log database's page journal (see `page_journal`).
pub const LOG_JOURNAL_FILE: &str = "raft-log.journal";

/// The Raft log store. Owned by openraft; cloning readers is cheap.
pub struct LogStore {
    shared: Arc<Shared>,
    writer: Writer,
}

/// Who writes the log.
enum Writer {
    /// The group-commit thread (a real disk); the queue is `None` during drop.
    Thread { tx: Option<mpsc::Sender<WriteOp>>, handle: Option<std::thread::JoinHandle<()>> },
    /// A task on the runtime that waits out each sync's latency (`Disk::log_sync_latencies`).
    Task(tokio::sync::mpsc::UnboundedSender<WriteOp>),
    /// The calling task, at once.
    Inline,
}

/// A read handle on the log, used by openraft's replication and apply tasks.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Open (or create) `<dir>/raft-log.redb` and start its writer thread.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        Self::open_with_waiter(&OsDisk::open(dir)?).map(|(s, _)| s)
    }

    /// Like [`LogStore::open`], also returning a waiter that completes once the database is
    /// closed (the store, every reader and the writer thread are gone).
    pub(crate) fn open_with_waiter(disk: &dyn Disk) -> io::Result<(LogStore, DropWaiter)> {
        let (db, hook) = open_journaled_database(disk, LOG_FILE, LOG_JOURNAL_FILE)?;
        let (mem, purge_backlog) = load_state(&db)?;
        let (signal, waiter) = DropSignal::new();
        let shared = Arc::new(Shared {
            db,
            mem: Mutex::new(mem),
            txns: AtomicU64::new(0),
            hook,
            failed_after_durable: Mutex::new(None),
            purge_backlog: Mutex::new(purge_backlog),
            _dropped: signal,
        });
        if !disk.blocking_on_threads() {
            let Some(latencies) = disk.log_sync_latencies() else {
                return Ok((LogStore { shared, writer: Writer::Inline }, waiter));
            };
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(log_writer::run_task(shared.clone(), rx, latencies));
            return Ok((LogStore { shared, writer: Writer::Task(tx) }, waiter));
        }
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || log_writer::run(writer_shared, rx))?;
        Ok((LogStore { shared, writer: Writer::Thread { tx: Some(tx), handle: Some(handle) } }, waiter))
    }

    /// Number of write transactions (each one fsync) committed since open. Exposed so tests can
    /// check that concurrent appends share a sync.
    pub fn write_transactions(&self) -> u64 {
        self.shared.txns.load(Ordering::Relaxed)
    }

    /// How many entries with indexes in `range` are still in the database, purged or not.
    #[cfg(test)]
    pub(crate) fn entries_on_disk(&self, range: std::ops::RangeInclusive<u64>) -> u64 {
        let rtxn = self.shared.db.begin_read().unwrap();
        rtxn.open_table(ENTRIES).unwrap().range(range).unwrap().count() as u64
    }

    fn send(&self, op: WriteOp) -> io::Result<()> {
        let stopped = || io::Error::other("raft log writer has stopped");
        match &self.writer {
            Writer::Inline => {
                log_writer::flush(&self.shared, vec![op]);
                Ok(())
            }
            Writer::Task(tx) => tx.send(op).map_err(|_| stopped()),
            Writer::Thread { tx, .. } => tx.as_ref().ok_or_else(stopped)?.send(op).map_err(|_| stopped()),
        }
    }

    async fn send_and_wait(&self, make: impl FnOnce(oneshot::Sender<io::Result<()>>) -> WriteOp) -> io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(make(done))?;
        wait.await.map_err(|_| io::Error::other("raft log writer dropped a request"))?
    }
}

impl Drop for LogStore {
    /// Stop the writer after it has finished what is queued, so that once the store (and its
    /// readers) are gone the database file is closed and can be reopened.
    fn drop(&mut self) {
        if let Writer::Thread { tx, handle } = &mut self.writer {
            drop(tx.take());
            if let Some(writer) = handle.take()
                && writer.join().is_err()
            {
                tracing::error!("raft log writer thread panicked");
            }
        }
    }
}

/// Read vote, committed, purge point and last log id from disk, and where purged entries remain.
fn load_state(db: &Database) -> io::Result<(MemState, Option<u64>)> {
    // Create the tables up front so read transactions never see them missing.
    let txn = db.begin_write().map_err(sto)?;
    {
        txn.open_table(ENTRIES).map_err(sto)?;
        txn.open_table(META).map_err(sto)?;
    }
    txn.commit().map_err(sto)?;

    let rtxn = db.begin_read().map_err(sto)?;
    let meta = rtxn.open_table(META).map_err(sto)?;
    let get =
        |key: &str| -> io::Result<Option<Vec<u8>>> { Ok(meta.get(key).map_err(sto)?.map(|v| v.value().to_vec())) };
    let vote: Option<Vote> = get(KEY_VOTE)?.map(|b| decode(&b)).transpose()?;
    let committed: Option<LogId> = get(KEY_COMMITTED)?.map(|b| decode::<Option<LogId>>(&b)).transpose()?.flatten();
    let last_purged: Option<LogId> = get(KEY_PURGED)?.map(|b| decode(&b)).transpose()?;
    let entries = rtxn.open_table(ENTRIES).map_err(sto)?;
    let last_entry: Option<Entry> = entries.last().map_err(sto)?.map(|(_, v)| decode(v.value())).transpose()?;
    // Purged entries the writer had not deleted yet are not the log's last ones.
    let last_log_id = last_entry.map(|e| e.log_id).max(last_purged);
    let first = entries.first().map_err(sto)?.map(|(k, _)| k.value());
    let backlog = last_purged.map(|p| p.index()).filter(|&p| first.is_some_and(|f| f <= p));
    Ok((MemState { cache: EntryCache::default(), last_log_id, last_purged, vote, committed }, backlog))
}

impl LogReader {
    fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        // Cache first, then disk: see the module comment.
        let (mut out, start, end) = {
            let mem = self.shared.mem.lock();
            let start = match &mem.last_purged {
                Some(p) => start.max(p.index() + 1),
                None => start,
            };
            // Nothing exists past the last entry; clamping lets the cache alone answer.
            let end = end.min(mem.last_log_id.as_ref().map_or(0, |l| l.index().saturating_add(1)));
            if start >= end {
                return Ok(Vec::new());
            }
            (mem.cache.copy_range(start, end), start, end)
        };
        let complete = out.len() as u64 == end - start && out.first_key_value().is_some_and(|(k, _)| *k == start);
        if !complete {
            let rtxn = self.shared.db.begin_read().map_err(sto)?;
            let table = rtxn.open_table(ENTRIES).map_err(sto)?;
            for item in table.range(start..end).map_err(sto)? {
                let (k, v) = item.map_err(sto)?;
                let idx = k.value();
                // The cached copy is newer than disk for the same index (a re-append after truncate).
                if let std::collections::btree_map::Entry::Vacant(e) = out.entry(idx) {
                    e.insert(decode(v.value())?);
                }
            }
        }
        out.retain(|idx, _| *idx >= start);
        let entries: Vec<Entry> = out.into_values().collect();
        for pair in entries.windows(2) {
            if pair[1].log_id.index() != pair[0].log_id.index() + 1 {
                return Err(io::Error::other(format!(
                    "hole in raft log between {} and {}",
                    pair[0].log_id, pair[1].log_id
                )));
            }
        }
        Ok(entries)
    }
}

/// Turn any `RangeBounds<u64>` into a half-open `[start, end)`.
fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        self.read_range(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.mem.lock().vote)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        LogReader { shared: self.shared.clone() }.read_range(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.mem.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mem = self.shared.mem.lock();
        Ok(LogState { last_purged_log_id: mem.last_purged, last_log_id: mem.last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader { shared: self.shared.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote)?;
        self.send_and_wait(|done| WriteOp::Vote { bytes, done }).await?;
        self.shared.mem.lock().vote = Some(*vote);
        Ok(())
    }

    /// Queued behind the appends it covers and synced with the next group commit; not awaited,
    /// because openraft calls this on its hot path right before applying. Losing the last few
    /// updates in a crash only makes the restart re-apply less eagerly (the entries are durable
    /// in the log and are re-applied once the leader re-confirms the commit).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let bytes = encode(&committed)?;
        self.shared.mem.lock().committed = committed;
        self.send(WriteOp::Committed { bytes })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.shared.mem.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = <TypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let encoded = entries.iter().map(|e| Ok((e.log_id, encode(e)?))).collect::<io::Result<Vec<_>>>()?;
        let sized: Vec<(Entry, usize)> = entries.into_iter().zip(&encoded).map(|(e, (_, b))| (e, b.len())).collect();
        {
            let mut mem = self.shared.mem.lock();
            mem.cache.append(sized);
            mem.last_log_id = Some(last);
        }
        self.send(WriteOp::Append { entries: encoded, callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.as_ref().map(|l| l.index() + 1).unwrap_or(0);
        self.send_and_wait(|done| WriteOp::TruncateFrom { from, done }).await?;
        let mut mem = self.shared.mem.lock();
        mem.cache.remove_from(from);
        // Truncating beyond the end changes nothing.
        if mem.last_log_id > last_log_id {
            mem.last_log_id = last_log_id.or_else(|| mem.last_purged);
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let upto = log_id.index();
        let bytes = encode(&log_id)?;
        self.send_and_wait(|done| WriteOp::Purge { upto, bytes, done }).await?;
        let mut mem = self.shared.mem.lock();
        mem.cache.remove_upto(upto);
        if mem.last_log_id.as_ref().is_none_or(|l| l.index() < upto) {
            mem.last_log_id = Some(log_id);
        }
        mem.last_purged = Some(log_id);
        Ok(())
    }
}
