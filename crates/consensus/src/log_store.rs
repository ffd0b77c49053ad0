//! The Raft log on redb (`<data_dir>/raft-log.redb`): openraft's `RaftLogStorage` and
//! `RaftLogReader`.
//!
//! Writes go through the group-commit writer thread (`log_writer`). Appended entries are kept in
//! an in-memory tail until their transaction is synced, because openraft requires them to be
//! readable as soon as `append` returns, long before the fsync finishes. Readers merge disk and
//! tail: they copy the tail *before* opening the read transaction, so an entry that moves from
//! tail to disk in between is seen in at least one of them.

use std::collections::BTreeMap;
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
use crate::fsutil::{DropSignal, DropWaiter, fsync_dir};
use crate::log_writer::{self, ENTRIES, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, META, WriteOp, sto};
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// File name of the log database inside the data directory.
pub const LOG_FILE: &str = "raft-log.redb";

/// What the log looks like right now, including writes not yet synced.
#[derive(Default)]
pub(crate) struct MemState {
    /// Appended entries whose transaction has not been synced yet.
    pub(crate) pending: BTreeMap<u64, Entry>,
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
    /// Last field: fires once the database above has been closed.
    _dropped: DropSignal,
}

/// The Raft log store. Owned by openraft; cloning readers is cheap.
pub struct LogStore {
    shared: Arc<Shared>,
    /// `None` only during drop.
    tx: Option<mpsc::Sender<WriteOp>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// A read handle on the log, used by openraft's replication and apply tasks.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Open (or create) `<dir>/raft-log.redb` and start its writer thread.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        Self::open_with_waiter(dir).map(|(s, _)| s)
    }

    /// Like [`LogStore::open`], also returning a waiter that completes once the database is
    /// closed (the store, every reader and the writer thread are gone).
    pub(crate) fn open_with_waiter(dir: &Path) -> io::Result<(LogStore, DropWaiter)> {
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let db = Database::create(&path).map_err(sto)?;
        if !existed {
            fsync_dir(dir)?;
        }
        let mem = load_state(&db)?;
        let (signal, waiter) = DropSignal::new();
        let shared = Arc::new(Shared { db, mem: Mutex::new(mem), txns: AtomicU64::new(0), _dropped: signal });
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || log_writer::run(writer_shared, rx))?;
        Ok((LogStore { shared, tx: Some(tx), writer: Some(writer) }, waiter))
    }

    /// Number of write transactions (each one fsync) committed since open. Exposed so tests can
    /// check that concurrent appends share a sync.
    pub fn write_transactions(&self) -> u64 {
        self.shared.txns.load(Ordering::Relaxed)
    }

    fn send(&self, op: WriteOp) -> io::Result<()> {
        let stopped = || io::Error::other("raft log writer thread has stopped");
        self.tx.as_ref().ok_or_else(stopped)?.send(op).map_err(|_| stopped())
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
        drop(self.tx.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("raft log writer thread panicked");
        }
    }
}

/// Read vote, committed, purge point and last log id from disk.
fn load_state(db: &Database) -> io::Result<MemState> {
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
    let last_log_id = last_entry.map(|e| e.log_id).or(last_purged);
    Ok(MemState { pending: BTreeMap::new(), last_log_id, last_purged, vote, committed })
}

impl LogReader {
    fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        // Tail first, then disk: see the module comment.
        let (mut out, purged): (BTreeMap<u64, Entry>, Option<u64>) = {
            let mem = self.shared.mem.lock();
            let tail = mem.pending.range(start..end).map(|(k, v)| (*k, v.clone())).collect();
            (tail, mem.last_purged.as_ref().map(|l| l.index()))
        };
        let start = match purged {
            Some(p) => start.max(p + 1),
            None => start,
        };
        if start < end {
            let rtxn = self.shared.db.begin_read().map_err(sto)?;
            let table = rtxn.open_table(ENTRIES).map_err(sto)?;
            for item in table.range(start..end).map_err(sto)? {
                let (k, v) = item.map_err(sto)?;
                let idx = k.value();
                // The tail copy is newer than disk for the same index (a re-append after truncate).
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
        {
            let mut mem = self.shared.mem.lock();
            for e in entries {
                mem.pending.insert(e.log_id.index(), e);
            }
            mem.last_log_id = Some(last);
        }
        self.send(WriteOp::Append { entries: encoded, callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.as_ref().map(|l| l.index() + 1).unwrap_or(0);
        self.send_and_wait(|done| WriteOp::TruncateFrom { from, done }).await?;
        let mut mem = self.shared.mem.lock();
        drop(mem.pending.split_off(&from));
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
        let keep = mem.pending.split_off(&(upto + 1));
        mem.pending = keep;
        if mem.last_log_id.as_ref().is_none_or(|l| l.index() < upto) {
            mem.last_log_id = Some(log_id);
        }
        mem.last_purged = Some(log_id);
        Ok(())
    }
}
