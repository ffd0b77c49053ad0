//! The log store's single writer thread: the group commit.
//!
//! Every mutation of the Raft log (append, vote, committed, truncate, purge) is queued here in call
//! order. The thread takes everything queued, writes it in ONE redb write transaction with
//! `Durability::Immediate` (one fsync), and completes the callers as soon as that transaction is
//! durable: the page journal under the database runs the completions right after its sync, before
//! redb's bookkeeping and the page writes that follow (see `page_journal`). Appends arriving
//! while a transaction is being synced simply join the next one, so the fsync rate stays bounded
//! while throughput grows with load. One queue also gives openraft's required ordering: a vote
//! and an append are never reordered.
//!
//! Between batches the thread either blocks on the queue or, while writes come one at a time and
//! close together, polls it for a short window first (`idle_wait`): waking a parked thread costs
//! more than a third of a one-client put's sync on the virtual machines we run on.
//!
//! A batch holding nothing but committed-id updates is not written on its own: nobody waits for
//! it, and its fsync would delay the next append (with one client every put paid two fsyncs in
//! a row). The latest such id rides with the next transaction, or is written when the thread ends.
//!
//! A purge writes only the new purge point; the entries at or below it are deleted `PURGE_CHUNK`
//! at a time, one chunk in each transaction that follows. Deleting all of them at once (about
//! 100 000 after each snapshot) made one transaction take 13–35 ms, with every write queued behind
//! it. Reads never look below the purge point, and reopening picks up what is left to delete.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use openraft::storage::IOFlushed;
use redb::{Database, Durability, ReadableTable};
use tokio::sync::oneshot;

use self::idle_wait::{Batch, IdleWait, SPIN_WINDOW};
use crate::log_state::{ENTRIES, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, META, Shared, sto};
use crate::types::{LogId, TypeConfig};

/// Upper bound on operations folded into one transaction, so one sync never grows unbounded.
const MAX_OPS_PER_TXN: usize = 1024;
/// Purged entries each transaction deletes (see the module comment).
pub(crate) const PURGE_CHUNK: u64 = 1024;

/// One queued mutation.
pub(crate) enum WriteOp {
    /// Entries already encoded, with their log ids (to mark the cached copies synced afterwards).
    Append { entries: Vec<(LogId, Vec<u8>)>, callback: IOFlushed<TypeConfig> },
    /// A vote; the caller waits for durability.
    Vote { bytes: Vec<u8>, done: oneshot::Sender<io::Result<()>> },
    /// The committed log id; nobody waits, it rides along with the next sync.
    Committed { bytes: Vec<u8> },
    /// Delete every entry with index >= `from`.
    TruncateFrom { from: u64, done: oneshot::Sender<io::Result<()>> },
    /// Delete every entry with index <= `upto` and record the purge point.
    Purge { upto: u64, bytes: Vec<u8>, done: oneshot::Sender<io::Result<()>> },
}

/// What a [`WriteOp`] writes.
enum Write {
    Append(Vec<(LogId, Vec<u8>)>),
    Vote(Vec<u8>),
    Committed(Vec<u8>),
    TruncateFrom(u64),
    Purge { upto: u64, bytes: Vec<u8> },
}

/// Who waits for a [`WriteOp`] to be durable.
enum Waiter {
    Flushed(IOFlushed<TypeConfig>),
    Done(oneshot::Sender<io::Result<()>>),
}

impl WriteOp {
    /// Log entries this operation appends.
    fn appended_entries(&self) -> usize {
        match self {
            WriteOp::Append { entries, .. } => entries.len(),
            _ => 0,
        }
    }

    fn into_parts(self) -> (Write, Option<Waiter>) {
        match self {
            WriteOp::Append { entries, callback } => (Write::Append(entries), Some(Waiter::Flushed(callback))),
            WriteOp::Vote { bytes, done } => (Write::Vote(bytes), Some(Waiter::Done(done))),
            WriteOp::Committed { bytes } => (Write::Committed(bytes), None),
            WriteOp::TruncateFrom { from, done } => (Write::TruncateFrom(from), Some(Waiter::Done(done))),
            WriteOp::Purge { upto, bytes, done } => (Write::Purge { upto, bytes }, Some(Waiter::Done(done))),
        }
    }
}

/// Body of the writer thread; returns when every sender is gone.
pub(crate) fn run(shared: Arc<Shared>, rx: mpsc::Receiver<WriteOp>) {
    let mut carried = Carried::default();
    let mut wait = IdleWait::Block;
    loop {
        let started = Instant::now();
        let Some(first) = next_op(&rx, wait, started) else { break };
        let waited = started.elapsed();
        let mut batch = vec![first];
        while batch.len() < MAX_OPS_PER_TXN {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        wait = wait.next(waited, batch_kind(&batch));
        if let Some(batch) = carried.take_batch(batch) {
            flush(&shared, batch);
        }
    }
    carried.finish(&shared);
}

/// Body of the writer *task* of a disk that runs blocking work inline but gives syncs a latency (the
/// simulation, see `Disk::log_sync_latencies`): the same batching as the thread, with each batch's write
/// and sync done only after that batch's latency has passed on the runtime's clock. A crash meanwhile
/// loses the batch, as a power cut loses a write whose sync has not returned.
pub(crate) async fn run_task(
    shared: Arc<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WriteOp>,
    mut latencies: crate::disk::SyncLatencies,
) {
    let mut carried = Carried::default();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_OPS_PER_TXN {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Some(batch) = carried.take_batch(batch) {
            tokio::time::sleep(latencies()).await;
            flush(&shared, batch);
        }
    }
    carried.finish(&shared);
}

/// The newest committed id not written yet (see the module comment).
#[derive(Default)]
struct Carried(Option<WriteOp>);

impl Carried {
    /// What to write of `batch`: nothing when it holds only committed ids (the newest is kept for the
    /// next batch), else the batch with the kept id first (older than any in the batch, so a later
    /// one overwrites it).
    fn take_batch(&mut self, mut batch: Vec<WriteOp>) -> Option<Vec<WriteOp>> {
        if batch_kind(&batch) == Batch::OnlyCommittedIds {
            self.0 = batch.pop();
            return None;
        }
        if let Some(op) = self.0.take() {
            batch.insert(0, op);
        }
        Some(batch)
    }

    /// Writes the kept id as the writer stops.
    fn finish(self, shared: &Shared) {
        if let Some(op) = self.0 {
            flush(shared, vec![op]);
        }
    }
}

/// What `batch` says about how writes are coming (see `idle_wait`).
fn batch_kind(batch: &[WriteOp]) -> Batch {
    if batch.iter().all(|op| matches!(op, WriteOp::Committed { .. })) {
        return Batch::OnlyCommittedIds;
    }
    Batch::Writes { appended_entries: batch.iter().map(WriteOp::appended_entries).sum() }
}

/// The next queued operation, waiting as `wait` says (see `idle_wait`); `None` once every sender
/// is gone.
fn next_op(rx: &mpsc::Receiver<WriteOp>, wait: IdleWait, started: Instant) -> Option<WriteOp> {
    if wait == IdleWait::Spin {
        let until = started + SPIN_WINDOW;
        loop {
            match rx.try_recv() {
                Ok(op) => return Some(op),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
    }
    rx.recv().ok()
}

/// Writes `batch` in one synced transaction and completes its callers once it is durable.
pub(crate) fn flush(shared: &Shared, batch: Vec<WriteOp>) {
    let (writes, waiters): (Vec<Write>, Vec<Waiter>) = {
        let mut writes = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for (write, waiter) in batch.into_iter().map(WriteOp::into_parts) {
            writes.push(write);
            waiters.extend(waiter);
        }
        (writes, waiters)
    };
    if let Some(cause) = shared.failed_after_durable.lock().clone() {
        complete(waiters, Err(io::Error::other(format!("{FAILED_AFTER_DURABLE} ({cause})"))));
        return;
    }
    shared.txns.fetch_add(1, Ordering::Relaxed);
    shared.hook.arm(Box::new(move |res| complete(waiters, res)));
    let backlog = *shared.purge_backlog.lock();
    let res = write_batch(&shared.db, &writes, backlog);
    if let Err(e) = &res {
        tracing::error!("raft log write failed: {e}");
    }
    let res = res.map(|backlog| *shared.purge_backlog.lock() = backlog);
    match shared.hook.disarm() {
        // Not answered yet (the transaction failed before it was durable, or redb synced it some
        // other way): answer with the outcome.
        Some(complete_waiters) => {
            if res.is_ok() {
                release_flushed(shared, &writes);
            }
            complete_waiters(res);
        }
        None if res.is_ok() => release_flushed(shared, &writes),
        // Answered as durable, which it is (a restart replays the journal), but redb failed
        // afterwards and its state here can no longer be trusted: refuse everything from now on.
        None => {
            let cause = res.err().map_or_else(String::new, |e| e.to_string());
            *shared.failed_after_durable.lock() = Some(cause);
        }
    }
}

/// The error every write gets once a commit failed after it was durable.
const FAILED_AFTER_DURABLE: &str = "raft log: a commit failed after it was made durable; restart this member";

/// Writes `batch` and deletes up to `PURGE_CHUNK` purged entries of `backlog`; returns what is left
/// of the backlog once the transaction is committed.
fn write_batch(db: &Database, batch: &[Write], mut backlog: Option<u64>) -> io::Result<Option<u64>> {
    let mut txn = db.begin_write().map_err(sto)?;
    // One-phase commit (redb's default, spelled out): the journal takes a commit to be durable at
    // the sync of the record holding redb's header, which is only true with one sync per commit.
    txn.set_two_phase_commit(false);
    txn.set_durability(Durability::Immediate).map_err(sto)?;
    {
        let mut entries = txn.open_table(ENTRIES).map_err(sto)?;
        let mut meta = txn.open_table(META).map_err(sto)?;
        for write in batch {
            match write {
                Write::Append(ents) => {
                    for (log_id, bytes) in ents {
                        entries.insert(log_id.index(), bytes.as_slice()).map_err(sto)?;
                    }
                }
                Write::Vote(bytes) => {
                    meta.insert(KEY_VOTE, bytes.as_slice()).map_err(sto)?;
                }
                Write::Committed(bytes) => {
                    meta.insert(KEY_COMMITTED, bytes.as_slice()).map_err(sto)?;
                }
                Write::TruncateFrom(from) => {
                    entries.retain_in::<u64, _>(*from.., |_, _| false).map_err(sto)?;
                }
                Write::Purge { upto, bytes } => {
                    meta.insert(KEY_PURGED, bytes.as_slice()).map_err(sto)?;
                    backlog = backlog.max(Some(*upto));
                }
            }
        }
        if let Some(upto) = backlog {
            backlog = delete_purged_chunk(&mut entries, upto)?;
        }
    }
    txn.commit().map_err(sto)?;
    Ok(backlog)
}

/// Deletes the first `PURGE_CHUNK` entries at or below `upto`; the backlog left after that.
fn delete_purged_chunk(entries: &mut redb::Table<u64, &[u8]>, upto: u64) -> io::Result<Option<u64>> {
    let Some(first) = entries.first().map_err(sto)?.map(|(k, _)| k.value()) else { return Ok(None) };
    if first > upto {
        return Ok(None);
    }
    let last = upto.min(first.saturating_add(PURGE_CHUNK - 1));
    entries.retain_in::<u64, _>(first..=last, |_, _| false).map_err(sto)?;
    Ok((last < upto).then_some(upto))
}

/// Entries now on disk may leave the cache once it is over budget (see `log_store`).
fn release_flushed(shared: &Shared, batch: &[Write]) {
    let mut mem = shared.mem.lock();
    for write in batch {
        if let Write::Append(entries) = write {
            for (log_id, _) in entries {
                mem.cache.mark_synced(log_id);
            }
        }
    }
    mem.cache.evict();
}

fn complete(waiters: Vec<Waiter>, res: io::Result<()>) {
    let msg = res.as_ref().err().map(|e| e.to_string());
    let result = || match &msg {
        None => Ok(()),
        Some(m) => Err(io::Error::other(m.clone())),
    };
    for waiter in waiters {
        match waiter {
            Waiter::Flushed(callback) => callback.io_completed(result()),
            Waiter::Done(done) => {
                let _ = done.send(result());
            }
        }
    }
}

mod idle_wait;
#[cfg(test)]
mod purge_tests;
#[cfg(test)]
mod tests;
