//! `RedbBackend`: the kv crate's storage seam on redb (`<data_dir>/state.redb`).
//!
//! Tables: `records` (16-byte big-endian revision key -> record bytes), `leases` (lease id ->
//! bytes), `meta` (name -> bytes). `commit` is one write transaction, so a batch of applied
//! commands and the raft applied-index stored next to them land together or not at all.
//!
//! Durability is switchable at run time: the state machine commits with `Durability::None` (the
//! Raft log is the durable record, see `state_machine`) and uses `sync` / `Immediate` where it
//! cannot rely on replay.
//!
//! `view` opens a redb read transaction (`RedbView`): MVCC-isolated, so a snapshot dump reads one
//! instant while later commits go ahead.
//!
//! A defragmentation (`defrag`) copies the database into a fresh file and swaps it in: `start_recording`
//! opens the instant it copies and records every later commit, `finish_recording` replays them into the copy and
//! puts it in place. Views opened before keep reading the old file, which the file system frees when the last
//! of them closes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use meridian_kv::{Backend, BackendView, RevisionKey, WriteBatch};
use parking_lot::{Mutex, RwLock};
use redb::{Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use crate::disk::{Disk, OsDisk};

/// File name of the state-machine database inside the data directory.
pub const STATE_FILE: &str = "state.redb";
/// The name of a defragmentation's copy while it is written (see `defrag`).
pub const DEFRAG_FILE: &str = "state.redb.defrag";

pub(crate) const RECORDS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("records");
pub(crate) const LEASES: TableDefinition<i64, &[u8]> = TableDefinition::new("leases");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// A redb-backed [`Backend`]. Cloning shares the same open database.
#[derive(Clone)]
pub struct RedbBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced by a defragmentation; readers take a reference for the length of one call.
    db: RwLock<Arc<Database>>,
    /// While a defragmentation copies: the batches committed since the instant it copies.
    recording: Mutex<Option<Recording>>,
    /// Where `state.redb` lives, for its size.
    disk: Arc<dyn Disk>,
    /// true = `Durability::Immediate` for `commit`.
    durable: AtomicBool,
    /// A commit since the last durable one is not yet on disk.
    unsynced: AtomicBool,
}

/// The commits a defragmentation must replay into its copy.
#[derive(Default)]
struct Recording {
    batches: Vec<WriteBatch>,
    /// The whole store was replaced (a snapshot install): the copy is worthless.
    replaced: bool,
}

fn be<E: std::fmt::Display>(e: E) -> meridian_kv::Error {
    meridian_kv::Error::Backend(e.to_string())
}

impl RedbBackend {
    /// Open (or create) `<dir>/state.redb`. Commits are durable (fsync) until
    /// [`RedbBackend::set_durable`] says otherwise.
    pub fn open(dir: &Path) -> meridian_kv::Result<RedbBackend> {
        Self::open_on(OsDisk::shared(dir).map_err(be)?)
    }

    /// Open (or create) `state.redb` on `disk`, durable like [`RedbBackend::open`].
    pub fn open_on(disk: Arc<dyn Disk>) -> meridian_kv::Result<RedbBackend> {
        let db = disk.open_database(STATE_FILE).map_err(be)?;
        create_tables(&db).map_err(be)?;
        // A copy a crash interrupted: the old file is still the database.
        disk.remove_file(DEFRAG_FILE).map_err(be)?;
        Ok(RedbBackend {
            inner: Arc::new(Inner {
                db: RwLock::new(Arc::new(db)),
                recording: Mutex::new(None),
                disk,
                durable: AtomicBool::new(true),
                unsynced: AtomicBool::new(false),
            }),
        })
    }

    /// The open database (the one in place now, should a defragmentation swap it meanwhile).
    pub(crate) fn db(&self) -> Arc<Database> {
        self.inner.db.read().clone()
    }

    /// The disk `state.redb` lives on.
    pub(crate) fn disk(&self) -> &Arc<dyn Disk> {
        &self.inner.disk
    }

    /// Opens the instant a defragmentation copies and starts recording every commit after it. The caller must
    /// keep commits out while this runs (it holds the kv store's write lock).
    pub(crate) fn start_recording(&self) -> meridian_kv::Result<ReadTransaction> {
        let txn = self.db().begin_read().map_err(be)?;
        *self.inner.recording.lock() = Some(Recording::default());
        Ok(txn)
    }

    /// Stops recording; returns the commits since [`RedbBackend::start_recording`], or `None` when the store
    /// was replaced meanwhile.
    pub(crate) fn stop_recording(&self) -> Option<Vec<WriteBatch>> {
        let recording = self.inner.recording.lock().take()?;
        (!recording.replaced).then_some(recording.batches)
    }

    /// Puts `db` in place of the open database (a defragmented copy with every commit replayed into it). The
    /// caller keeps commits out meanwhile and has made `db` durable.
    pub(crate) fn swap_database(&self, db: Database) {
        *self.inner.db.write() = Arc::new(db);
        self.inner.unsynced.store(false, Ordering::SeqCst);
    }

    /// Lets go of `state.redb`: an empty in-memory database takes its place, so the file is closed (and its lock
    /// released) even while something of a stopped member still holds this store, and a new life of the member can
    /// open it. Later calls find no data.
    pub(crate) fn close(&self) {
        let empty = redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new());
        match empty {
            Ok(db) => *self.inner.db.write() = Arc::new(db),
            Err(e) => tracing::warn!(error = %e, "could not close the kv store's file"),
        }
    }

    /// Choose whether `commit` fsyncs (`true`) or leaves the data to the next durable commit.
    pub fn set_durable(&self, durable: bool) {
        self.inner.durable.store(durable, Ordering::SeqCst);
    }

    /// Make every earlier commit durable: an empty transaction with `Durability::Immediate`
    /// (redb persists non-durable commits together with the next durable one). Does nothing when
    /// everything is durable already.
    pub fn sync(&self) -> meridian_kv::Result<()> {
        // Cleared before the commit: a non-durable commit racing with this sync sets it again.
        if !self.inner.unsynced.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let res = (|| {
            let mut txn = self.db().begin_write().map_err(be)?;
            txn.set_durability(Durability::Immediate).map_err(be)?;
            txn.commit().map_err(be)
        })();
        if res.is_err() {
            self.inner.unsynced.store(true, Ordering::SeqCst);
        }
        res
    }
}

/// A point-in-time view of `state.redb`: one read transaction with its tables open.
pub struct RedbView {
    records: ReadOnlyTable<[u8; 16], &'static [u8]>,
    leases: ReadOnlyTable<i64, &'static [u8]>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    /// Keeps the transaction (and so the pages it reads) alive with the tables.
    _txn: ReadTransaction,
}

impl BackendView for RedbView {
    fn scan_records(
        &self,
        from: RevisionKey,
        visit: &mut dyn FnMut(RevisionKey, &[u8]) -> meridian_kv::Result<bool>,
    ) -> meridian_kv::Result<()> {
        scan(&self.records, from, visit)
    }

    fn leases(&self) -> meridian_kv::Result<Vec<(i64, Vec<u8>)>> {
        all_leases(&self.leases)
    }

    fn meta(&self, key: &str) -> meridian_kv::Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key).map_err(be)?.map(|v| v.value().to_vec()))
    }
}

fn scan(
    table: &ReadOnlyTable<[u8; 16], &'static [u8]>,
    from: RevisionKey,
    visit: &mut dyn FnMut(RevisionKey, &[u8]) -> meridian_kv::Result<bool>,
) -> meridian_kv::Result<()> {
    for item in table.range(from.to_bytes()..).map_err(be)? {
        let (k, v) = item.map_err(be)?;
        let key = k.value();
        let rev = RevisionKey::from_bytes(&key)
            .ok_or_else(|| meridian_kv::Error::Corrupt(format!("bad revision key {key:?}")))?;
        if !visit(rev, v.value())? {
            break;
        }
    }
    Ok(())
}

fn all_leases(table: &ReadOnlyTable<i64, &'static [u8]>) -> meridian_kv::Result<Vec<(i64, Vec<u8>)>> {
    table
        .iter()
        .map_err(be)?
        .map(|item| {
            let (k, v) = item.map_err(be)?;
            Ok((k.value(), v.value().to_vec()))
        })
        .collect()
}

impl Backend for RedbBackend {
    type View = RedbView;

    fn get_records(&self, revs: &[RevisionKey]) -> meridian_kv::Result<Vec<Option<Vec<u8>>>> {
        let txn = self.db().begin_read().map_err(be)?;
        let table = txn.open_table(RECORDS).map_err(be)?;
        revs.iter().map(|rev| Ok(table.get(rev.to_bytes()).map_err(be)?.map(|v| v.value().to_vec()))).collect()
    }

    fn scan_records(
        &self,
        from: RevisionKey,
        visit: &mut dyn FnMut(RevisionKey, &[u8]) -> meridian_kv::Result<bool>,
    ) -> meridian_kv::Result<()> {
        let txn = self.db().begin_read().map_err(be)?;
        scan(&txn.open_table(RECORDS).map_err(be)?, from, visit)
    }

    fn leases(&self) -> meridian_kv::Result<Vec<(i64, Vec<u8>)>> {
        let txn = self.db().begin_read().map_err(be)?;
        all_leases(&txn.open_table(LEASES).map_err(be)?)
    }

    fn meta(&self, key: &str) -> meridian_kv::Result<Option<Vec<u8>>> {
        let txn = self.db().begin_read().map_err(be)?;
        let table = txn.open_table(META).map_err(be)?;
        Ok(table.get(key).map_err(be)?.map(|v| v.value().to_vec()))
    }

    fn commit(&self, batch: &WriteBatch) -> meridian_kv::Result<()> {
        let durable = self.inner.durable.load(Ordering::SeqCst);
        self.write(batch, false, durable)
    }

    /// Always durable: it installs a snapshot, and the log before it may already be purged.
    fn replace_all(&self, batch: WriteBatch) -> meridian_kv::Result<()> {
        self.write(&batch, true, true)
    }

    fn view(&self) -> meridian_kv::Result<RedbView> {
        let txn = self.db().begin_read().map_err(be)?;
        Ok(RedbView {
            records: txn.open_table(RECORDS).map_err(be)?,
            leases: txn.open_table(LEASES).map_err(be)?,
            meta: txn.open_table(META).map_err(be)?,
            _txn: txn,
        })
    }

    fn size_bytes(&self) -> u64 {
        self.inner.disk.file_size(STATE_FILE)
    }

    /// redb's allocated pages, read in a write transaction that is then dropped (redb has no read-side count).
    fn size_in_use_bytes(&self) -> u64 {
        let stats = self.db().begin_write().and_then(|txn| Ok(txn.stats()?));
        match stats {
            Ok(s) => s.allocated_pages() * s.page_size() as u64,
            Err(e) => {
                tracing::warn!("reading the kv store's page statistics: {e}");
                self.size_bytes()
            }
        }
    }
}

impl RedbBackend {
    /// One write transaction: optionally clear every table, then apply `batch`.
    fn write(&self, batch: &WriteBatch, clear_first: bool, durable: bool) -> meridian_kv::Result<()> {
        write_batch(&self.db(), batch, clear_first, durable)?;
        if let Some(recording) = &mut *self.inner.recording.lock() {
            if clear_first {
                recording.replaced = true;
                recording.batches.clear();
            } else if !recording.replaced {
                recording.batches.push(batch.clone());
            }
        }
        if durable {
            self.inner.unsynced.store(false, Ordering::SeqCst);
        } else {
            self.inner.unsynced.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Creates the tables, so read transactions never find them missing.
pub(crate) fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        txn.open_table(RECORDS)?;
        txn.open_table(LEASES)?;
        txn.open_table(META)?;
    }
    txn.commit()?;
    Ok(())
}

/// One write transaction on `db`: optionally clear every table, then apply `batch`.
pub(crate) fn write_batch(
    db: &Database,
    batch: &WriteBatch,
    clear_first: bool,
    durable: bool,
) -> meridian_kv::Result<()> {
    let mut txn = db.begin_write().map_err(be)?;
    let durability = if durable { Durability::Immediate } else { Durability::None };
    txn.set_durability(durability).map_err(be)?;
    {
        let mut records = txn.open_table(RECORDS).map_err(be)?;
        let mut leases = txn.open_table(LEASES).map_err(be)?;
        let mut meta = txn.open_table(META).map_err(be)?;
        if clear_first {
            records.retain(|_, _| false).map_err(be)?;
            leases.retain(|_, _| false).map_err(be)?;
            meta.retain(|_, _| false).map_err(be)?;
        }
        for rev in &batch.delete_records {
            records.remove(rev.to_bytes()).map_err(be)?;
        }
        for (rev, bytes) in &batch.put_records {
            records.insert(rev.to_bytes(), bytes.as_slice()).map_err(be)?;
        }
        for id in &batch.delete_leases {
            leases.remove(*id).map_err(be)?;
        }
        for (id, bytes) in &batch.put_leases {
            leases.insert(*id, bytes.as_slice()).map_err(be)?;
        }
        for (key, bytes) in &batch.put_meta {
            meta.insert(key.as_str(), bytes.as_slice()).map_err(be)?;
        }
    }
    txn.commit().map_err(be)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rk(main: i64, sub: i64) -> RevisionKey {
        RevisionKey { main, sub }
    }

    #[test]
    fn commit_scan_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = RedbBackend::open(dir.path()).unwrap();
            b.commit(&WriteBatch {
                put_records: vec![(rk(3, 0), b"c".to_vec()), (rk(2, 1), b"b".to_vec()), (rk(2, 0), b"a".to_vec())],
                put_leases: vec![(7, b"l".to_vec())],
                put_meta: vec![("m".into(), b"v".to_vec())],
                ..Default::default()
            })
            .unwrap();
            b.commit(&WriteBatch { delete_records: vec![rk(3, 0)], delete_leases: vec![7], ..Default::default() })
                .unwrap();
        }
        let b = RedbBackend::open(dir.path()).unwrap();
        let mut seen = vec![];
        b.scan_records(rk(2, 1), &mut |k, v| {
            seen.push((k, v.to_vec()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec![(rk(2, 1), b"b".to_vec())]);
        assert_eq!(b.get_records(&[rk(2, 0), rk(3, 0)]).unwrap(), vec![Some(b"a".to_vec()), None]);
        assert!(b.leases().unwrap().is_empty());
        assert_eq!(b.meta("m").unwrap(), Some(b"v".to_vec()));
        assert!(b.size_bytes() > 0);

        b.replace_all(WriteBatch { put_records: vec![(rk(9, 0), b"z".to_vec())], ..Default::default() }).unwrap();
        let mut all = vec![];
        b.scan_records(rk(0, 0), &mut |k, _| {
            all.push(k);
            Ok(true)
        })
        .unwrap();
        assert_eq!(all, vec![rk(9, 0)]);
        assert_eq!(b.meta("m").unwrap(), None, "replace_all clears meta of other layers too");
    }

    #[test]
    fn view_is_a_frozen_instant_and_commits_proceed_while_it_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let b = RedbBackend::open(dir.path()).unwrap();
        b.set_durable(false);
        b.commit(&WriteBatch {
            put_records: vec![(rk(1, 0), b"a".to_vec())],
            put_meta: vec![("m".into(), b"1".to_vec())],
            ..Default::default()
        })
        .unwrap();
        let view = b.view().unwrap();
        b.commit(&WriteBatch {
            put_records: vec![(rk(2, 0), b"b".to_vec())],
            delete_records: vec![rk(1, 0)],
            put_leases: vec![(5, b"l".to_vec())],
            put_meta: vec![("m".into(), b"2".to_vec())],
            ..Default::default()
        })
        .unwrap();
        b.sync().unwrap();
        let mut seen = vec![];
        view.scan_records(RevisionKey::MIN, &mut |k, v| {
            seen.push((k, v.to_vec()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec![(rk(1, 0), b"a".to_vec())]);
        assert!(view.leases().unwrap().is_empty());
        assert_eq!(view.meta("m").unwrap(), Some(b"1".to_vec()));
        assert_eq!(b.meta("m").unwrap(), Some(b"2".to_vec()));
    }
}
