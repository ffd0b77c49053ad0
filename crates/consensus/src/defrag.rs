//! Defragmentation of the kv store (`Maintenance.Defragment`): the space that compaction and overwrites free
//! inside `state.redb` stays in the file until the file is rewritten, so the database is copied into a fresh
//! file, table by table, and the copy is swapped in.
//!
//! Nothing stops while it copies. The copy reads one instant (a redb read transaction); the state machine
//! keeps applying, its changes waiting in the kv store's pending overlay as during any sync (the copy holds
//! the sync turn, see `kv_sync`), and any commit that happens anyway is recorded and replayed into the copy.
//! Only the swap takes the kv store's write lock: replay what was recorded, make the copy durable, rename it
//! over `state.redb`. A crash before the rename leaves the old file in charge (the copy is removed at the next
//! defragmentation); after it, the copy holds everything the old file held.

use std::io;
use std::time::Instant;

use meridian_kv::{Backend, KvStore, WriteBatch};
use parking_lot::RwLock;
use redb::{Database, Durability, ReadTransaction, ReadableTable};

use crate::kv_backend::{DEFRAG_FILE, LEASES, META, RECORDS, RedbBackend, STATE_FILE, create_tables, write_batch};
use crate::kv_sync::KvSync;

/// Entries copied per write transaction: redb keeps a transaction's dirty pages in memory until it commits.
const COPY_BATCH: usize = 20_000;

/// What a defragmentation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragReport {
    /// `state.redb` before, in bytes.
    pub before: u64,
    /// `state.redb` after, in bytes.
    pub after: u64,
    /// Commits replayed into the copy at the swap.
    pub replayed: usize,
    /// Time the whole defragmentation took.
    pub took: std::time::Duration,
    /// Time the kv store's write lock was held for the swap.
    pub swap: std::time::Duration,
}

/// Copies the kv store into a fresh file and swaps it in (see the module comment). Blocking; one at a time
/// (callers share `sync`).
pub(crate) fn defragment(kv: &RwLock<KvStore<RedbBackend>>, sync: &KvSync) -> io::Result<DefragReport> {
    let started = Instant::now();
    let _turn = sync.take_turn();
    let backend = kv.read().backend().clone();
    let disk = backend.disk().clone();
    let before = backend.size_bytes();
    disk.remove_file(DEFRAG_FILE)?;
    let source = {
        // What is applied but still pending (a compaction's deletions, say) goes into the copy, not after it.
        let mut kv = kv.write();
        kv.commit(Vec::new()).map_err(io::Error::other)?;
        backend.start_recording().map_err(io::Error::other)?
    };
    let copied = (|| {
        let fresh = disk.open_database(DEFRAG_FILE)?;
        create_tables(&fresh).map_err(io::Error::other)?;
        copy(&source, &fresh)?;
        Ok::<_, io::Error>(fresh)
    })();
    drop(source);
    let fresh = match copied {
        Ok(fresh) => fresh,
        Err(e) => {
            backend.stop_recording();
            let _ = disk.remove_file(DEFRAG_FILE);
            return Err(e);
        }
    };
    let swap_started = Instant::now();
    let replayed = {
        let _kv = kv.write();
        let Some(batches) = backend.stop_recording() else {
            drop(fresh);
            disk.remove_file(DEFRAG_FILE)?;
            return Err(io::Error::other("a snapshot was installed during the defragmentation; run it again"));
        };
        let swapped = (|| {
            // The copy is durable already; what was recorded must be too before the rename.
            if !batches.is_empty() {
                for batch in &batches {
                    write_batch(&fresh, batch, false, false).map_err(io::Error::other)?;
                }
                write_batch(&fresh, &WriteBatch::default(), false, true).map_err(io::Error::other)?;
            }
            disk.rename(DEFRAG_FILE, STATE_FILE)
        })();
        if let Err(e) = swapped {
            drop(fresh);
            let _ = disk.remove_file(DEFRAG_FILE);
            return Err(e);
        }
        backend.swap_database(fresh);
        batches.len()
    };
    let swap = swap_started.elapsed();
    let report = DefragReport { before, after: backend.size_bytes(), replayed, took: started.elapsed(), swap };
    Ok(report)
}

/// Copies every table of `source` into `fresh` in batches; the last commit makes `fresh` durable.
fn copy(source: &ReadTransaction, fresh: &Database) -> io::Result<()> {
    fn e(err: impl Into<redb::Error>) -> io::Error {
        io::Error::other(err.into())
    }
    let records = source.open_table(RECORDS).map_err(e)?;
    let mut rows = records.iter().map_err(e)?.peekable();
    while rows.peek().is_some() {
        let txn = begin(fresh)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(e)?;
            for row in rows.by_ref().take(COPY_BATCH) {
                let (k, v) = row.map_err(e)?;
                table.insert(k.value(), v.value()).map_err(e)?;
            }
        }
        txn.commit().map_err(e)?;
    }
    let txn = begin(fresh)?;
    {
        let mut leases = txn.open_table(LEASES).map_err(e)?;
        for row in source.open_table(LEASES).map_err(e)?.iter().map_err(e)? {
            let (k, v) = row.map_err(e)?;
            leases.insert(k.value(), v.value()).map_err(e)?;
        }
        let mut meta = txn.open_table(META).map_err(e)?;
        for row in source.open_table(META).map_err(e)?.iter().map_err(e)? {
            let (k, v) = row.map_err(e)?;
            meta.insert(k.value(), v.value()).map_err(e)?;
        }
    }
    let mut txn = txn;
    txn.set_durability(Durability::Immediate).map_err(e)?;
    txn.commit().map_err(e)
}

fn begin(db: &Database) -> io::Result<redb::WriteTransaction> {
    let mut txn = db.begin_write().map_err(io::Error::other)?;
    txn.set_durability(Durability::None).map_err(io::Error::other)?;
    Ok(txn)
}

#[cfg(test)]
mod tests;
