//! A simulated disk: a member's files in memory, with the durability of a real disk.
//!
//! Every file keeps two images: what readers see now, and what has been synced. A write changes
//! only the first; `sync_data` copies the written ranges into the second. A crash throws the first
//! away, so a restarted member finds exactly what it had synced, and anything written but not
//! synced is lost, as after a power cut. A file that was never synced (nor made durable in its
//! directory) does not survive a crash at all.
//!
//! The disk outlives the simulated host: the runner keeps it across crash and restart. Handles
//! opened before a crash are fenced by a generation number, so a database object still being
//! dropped by the dead host's runtime cannot touch the files its successor opens.
//!
//! Names point at files as a directory's entries point at inodes: a handle keeps the file it opened
//! after a rename or removal takes its name away, and renames and removals are durable at once (as
//! `OsDisk` syncs the directory after each).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Cursor, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::Disk;
use meridian_consensus::disk::{SyncLatencies, database_on};
use parking_lot::Mutex;
use redb::{Database, StorageBackend};

use crate::rng::SimRng;

/// One file's two images.
#[derive(Clone, Default)]
struct SimFile {
    /// What readers see now.
    current: Vec<u8>,
    /// What survives a crash; `None` = the file itself would not survive.
    durable: Option<Vec<u8>>,
    /// Byte ranges written since the last sync (start, end).
    dirty: Vec<(usize, usize)>,
    /// How far the file has blocks: files are sparse, so growing one (`set_len`) takes no space, and a write past
    /// this mark needs new blocks (the way redb's files fill on a real file system unless space is allocated
    /// ahead of them).
    allocated: usize,
}

impl SimFile {
    fn sync(&mut self) {
        let durable = self.durable.get_or_insert_with(Vec::new);
        durable.resize(self.current.len(), 0);
        for (start, end) in self.dirty.drain(..) {
            let end = end.min(self.current.len());
            if start < end {
                durable[start..end].copy_from_slice(&self.current[start..end]);
            }
        }
    }
}

#[derive(Default)]
struct Files {
    /// The directory: name to file number.
    names: BTreeMap<String, u64>,
    /// Every file with a name or an open handle, by number.
    files: BTreeMap<u64, SimFile>,
    next_file: u64,
    /// Bumped by every crash; handles from an older generation are dead.
    generation: u64,
    /// Syncs performed, for the report.
    syncs: u64,
    /// Live handles of this generation, by file: a second open of a file fails while one lives, as redb's
    /// lock on a real file makes it fail.
    open: BTreeMap<u64, u32>,
}

/// A member's simulated disk. Clones share the same files.
#[derive(Clone, Default)]
pub struct SimDisk {
    inner: Arc<Mutex<Files>>,
    /// Draws each Raft log sync's latency; `None`: syncs take no time.
    sync_rng: Option<Arc<Mutex<SimRng>>>,
    /// When the Raft log sync under way ends, in simulated time since the start (none yet: `None`).
    sync_until: Arc<Mutex<Option<Duration>>>,
    /// Free space reported over what the files take (`None`: plenty). Writes still succeed: the fault it
    /// models is a disk nearly full, which the member must notice before a write fails.
    headroom: Arc<Mutex<Option<u64>>>,
    /// Whether the disk has no space left, and how that shows.
    full: Arc<Mutex<Fullness>>,
}

/// How full a simulated disk is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fullness {
    /// Room to spare.
    #[default]
    Room,
    /// No space left, as a full file system: it reports no free space, and a write that needs new blocks (past
    /// what its file has written so far; files are sparse), or a new file, fails with ENOSPC; writes into blocks a
    /// file already has still succeed.
    Full,
    /// No space left on a volume that does not say so (thin-provisioned storage, a quota below the file system):
    /// it reports room, yet every write fails with ENOSPC, so nothing can see it coming.
    FullUnseen,
}

/// Linux's ENOSPC ("No space left on device").
const NO_SPACE_LEFT: i32 = 28;

/// Shortest and longest Raft log sync on a disk with latencies (an SSD's fsync under load). Spread wide
/// enough that a follower's sync plus a round trip inside a datacenter can beat the leader's own.
const SYNC_LATENCY_US: (u64, u64) = (200, 6000);

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDisk").field("files", &self.inner.lock().files.len()).finish()
    }
}

impl SimDisk {
    /// An empty disk whose syncs take no time.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty disk whose Raft log syncs take between 0.2 and 6 ms of simulated time each, drawn from
    /// `seed`.
    pub fn with_sync_latency(seed: u64) -> Self {
        SimDisk { sync_rng: Some(Arc::new(Mutex::new(SimRng::new(seed)))), ..Self::default() }
    }

    /// Whether a Raft log sync is under way at simulated time `now`: a crash now loses what it writes.
    pub fn log_sync_in_flight(&self, now: Duration) -> bool {
        self.sync_until.lock().is_some_and(|until| until > now)
    }

    /// The host crashed: unsynced writes and never-synced files are gone, and every open handle
    /// is dead.
    pub fn crash(&self) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        inner.open.clear();
        let Files { names, files, .. } = &mut *inner;
        // Handles die with the host: only named files that were durable survive.
        names.retain(|_, n| files.get(n).is_some_and(|f| f.durable.is_some()));
        files.retain(|n, _| names.values().any(|named| named == n));
        for file in inner.files.values_mut() {
            file.current = file.durable.clone().unwrap_or_default();
            file.dirty.clear();
            file.allocated = file.allocated.min(file.current.len());
        }
    }

    /// A handle on the file called `name`, created (and durable in its directory, as `OsDisk`
    /// makes it) if missing.
    fn backend(&self, name: &str) -> io::Result<SimBackend> {
        let mut inner = self.inner.lock();
        let file = inner.file_named(name);
        if inner.open.get(&file).is_some_and(|n| *n > 0) {
            return Err(meridian_consensus::disk::in_use(name));
        }
        *inner.open.entry(file).or_default() += 1;
        inner.files.entry(file).or_default().durable.get_or_insert_with(Vec::new);
        Ok(SimBackend { disk: self.clone(), name: name.to_owned(), file, generation: inner.generation })
    }

    /// Makes the disk report only `bytes` free (`None`: plenty again).
    pub fn set_free_bytes(&self, bytes: Option<u64>) {
        *self.headroom.lock() = bytes;
    }

    /// Fills the disk up (see [`Fullness`]) or frees it again.
    pub fn set_fullness(&self, fullness: Fullness) {
        *self.full.lock() = fullness;
    }

    /// ENOSPC for a write that needs new blocks (`new_blocks`) or any write, as the disk's fullness says.
    fn room_for_write(&self, new_blocks: bool) -> io::Result<()> {
        match *self.full.lock() {
            Fullness::Full if new_blocks => Err(io::Error::from_raw_os_error(NO_SPACE_LEFT)),
            Fullness::FullUnseen => Err(io::Error::from_raw_os_error(NO_SPACE_LEFT)),
            _ => Ok(()),
        }
    }

    /// Syncs performed so far.
    pub fn syncs(&self) -> u64 {
        self.inner.lock().syncs
    }
}

impl Files {
    /// The number of the file called `name`, a new empty one if there is none.
    fn file_named(&mut self, name: &str) -> u64 {
        if let Some(&n) = self.names.get(name) {
            return n;
        }
        let n = self.next_file;
        self.next_file += 1;
        self.names.insert(name.to_owned(), n);
        self.files.insert(n, SimFile::default());
        n
    }

    fn named(&self, name: &str) -> Option<&SimFile> {
        self.names.get(name).and_then(|n| self.files.get(n))
    }
}

/// A redb storage backend over one simulated file.
struct SimBackend {
    disk: SimDisk,
    /// The name it was opened by, for debugging.
    name: String,
    file: u64,
    generation: u64,
}

impl fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBackend").field("name", &self.name).finish()
    }
}

impl Drop for SimBackend {
    fn drop(&mut self) {
        let mut inner = self.disk.inner.lock();
        if inner.generation == self.generation
            && let Some(n) = inner.open.get_mut(&self.file)
        {
            *n = n.saturating_sub(1);
        }
    }
}

impl SimBackend {
    fn with<T>(&self, f: impl FnOnce(&mut SimFile, &mut u64) -> io::Result<T>) -> io::Result<T> {
        let mut inner = self.disk.inner.lock();
        if inner.generation != self.generation {
            return Err(io::Error::other("simulated host crashed; handle is dead"));
        }
        let Files { files, syncs, .. } = &mut *inner;
        let file = files.entry(self.file).or_default();
        f(file, syncs)
    }
}

impl StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.with(|f, _| Ok(f.current.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.with(|f, _| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let end = start + out.len();
            let src = f.current.get(start..end).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            out.copy_from_slice(src);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.with(|f, _| {
            let len = usize::try_from(len).map_err(io::Error::other)?;
            let old = f.current.len();
            f.current.resize(len, 0);
            f.allocated = f.allocated.min(len);
            if len > old {
                f.dirty.push((old, len));
            }
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.with(|f, syncs| {
            f.sync();
            *syncs += 1;
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let (room_for_blocks, room) = (self.disk.room_for_write(true), self.disk.room_for_write(false));
        self.with(|f, _| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let end = start + data.len();
            room?;
            if end > f.allocated {
                room_for_blocks?;
                f.allocated = end;
            }
            if f.current.len() < end {
                f.current.resize(end, 0);
            }
            f.current[start..end].copy_from_slice(data);
            f.dirty.push((start, end));
            Ok(())
        })
    }
}

impl Disk for SimDisk {
    fn open_database(&self, name: &str) -> io::Result<Database> {
        database_on(self.backend(name)?)
    }

    fn open_backend(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(self.backend(name)?))
    }

    /// Small, so that simulated runs checkpoint the page journal often.
    fn journal_budget(&self) -> u64 {
        256 << 10
    }

    fn open_file(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send>>> {
        let inner = self.inner.lock();
        Ok(inner.named(name).map(|f| Box::new(Cursor::new(f.current.clone())) as Box<dyn Read + Send>))
    }

    fn replace_file_with(&self, name: &str, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        self.room_for_write(true)?;
        let mut bytes = Vec::new();
        write(&mut bytes)?;
        let mut inner = self.inner.lock();
        inner.syncs += 1;
        // A new file under the old name, as a rename of a temporary file gives. Nothing keeps such files
        // open (`open_file` reads a copy), so the old one goes.
        if let Some(old) = inner.names.remove(name) {
            inner.files.remove(&old);
        }
        let n = inner.file_named(name);
        let allocated = bytes.len();
        inner.files.insert(n, SimFile { current: bytes.clone(), durable: Some(bytes), dirty: Vec::new(), allocated });
        Ok(())
    }

    fn file_size(&self, name: &str) -> u64 {
        self.inner.lock().named(name).map_or(0, |f| f.current.len() as u64)
    }

    fn free_bytes(&self) -> Option<u64> {
        if *self.full.lock() == Fullness::Full {
            return Some(0);
        }
        Some(self.headroom.lock().unwrap_or(u64::MAX / 2))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let n = inner.names.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        inner.names.insert(to.to_owned(), n);
        Ok(())
    }

    fn remove_file(&self, name: &str) -> io::Result<()> {
        self.inner.lock().names.remove(name);
        Ok(())
    }

    fn blocking_on_threads(&self) -> bool {
        false
    }

    fn log_sync_latencies(&self) -> Option<SyncLatencies> {
        let (rng, until) = (self.sync_rng.clone()?, self.sync_until.clone());
        let (min, max) = SYNC_LATENCY_US;
        Some(Box::new(move || {
            let latency = Duration::from_micros(rng.lock().between(min, max));
            *until.lock() = turmoil::sim_elapsed().map(|now| now + latency);
            latency
        }))
    }
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn put(db: &Database, k: u64, durable: bool) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(if durable { redb::Durability::Immediate } else { redb::Durability::None }).unwrap();
        txn.open_table(T).unwrap().insert(k, k).unwrap();
        txn.commit().unwrap();
    }

    fn keys(db: &Database) -> Vec<u64> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(T).unwrap();
        table.iter().unwrap().map(|r| r.unwrap().0.value()).collect()
    }

    #[test]
    fn a_crash_keeps_synced_commits_and_loses_unsynced_ones() {
        let disk = SimDisk::new();
        let db = disk.open_database("x.redb").unwrap();
        put(&db, 1, true);
        put(&db, 2, false);
        assert_eq!(keys(&db), vec![1, 2]);
        disk.crash();
        drop(db);
        let db = disk.open_database("x.redb").unwrap();
        assert_eq!(keys(&db), vec![1], "the unsynced commit is gone, the synced one stays");
    }

    #[test]
    fn handles_from_before_a_crash_are_dead() {
        let disk = SimDisk::new();
        let db = disk.open_database("x.redb").unwrap();
        put(&db, 1, true);
        disk.crash();
        let written = (|| -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(T)?;
                t.insert(5, 5)?;
            }
            txn.commit()?;
            Ok(())
        })();
        assert!(written.is_err(), "a dead handle must not write");
        drop(db);
        let db = disk.open_database("x.redb").unwrap();
        assert_eq!(keys(&db), vec![1]);
    }

    #[test]
    fn replaced_files_are_durable_at_once() {
        let disk = SimDisk::new();
        disk.replace_file_with("snap", &mut |w| {
            w.write_all(b"ab")?;
            w.write_all(b"cd")
        })
        .unwrap();
        disk.crash();
        let mut text = String::new();
        disk.open_file("snap").unwrap().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcd");
        assert!(disk.open_file("missing").unwrap().is_none());
    }

    #[test]
    fn a_full_disk_fails_writes_that_need_space_and_reports_none_free() {
        let disk = SimDisk::new();
        let backend = disk.open_backend("f").unwrap();
        backend.write(0, &[1; 4096]).unwrap();
        disk.set_fullness(Fullness::Full);
        assert_eq!(disk.free_bytes(), Some(0));
        assert!(backend.write(0, &[2; 4096]).is_ok(), "space the file already has can be rewritten");
        let grow = backend.write(4096, &[3; 10]).unwrap_err();
        assert_eq!(grow.raw_os_error(), Some(NO_SPACE_LEFT));
        assert!(meridian_consensus::says_disk_full(&grow.to_string()), "{grow}");
        backend.set_len(1 << 20).expect("growing a sparse file takes no blocks");
        let hole = backend.write(8192, &[4; 10]).unwrap_err();
        assert_eq!(hole.raw_os_error(), Some(NO_SPACE_LEFT), "writing into the hole does");
        assert!(disk.replace_file_with("snap", &mut |w| w.write_all(b"x")).is_err(), "no room for a new file");
        disk.set_fullness(Fullness::FullUnseen);
        assert!(disk.free_bytes() > Some(1 << 30), "an unseen full disk reports room");
        assert_eq!(
            backend.write(0, &[5; 10]).unwrap_err().raw_os_error(),
            Some(NO_SPACE_LEFT),
            "yet refuses any write"
        );
        disk.set_fullness(Fullness::Room);
        backend.write(8192, &[4; 10]).unwrap();
        assert_eq!(backend.len().unwrap(), 1 << 20);
    }

    #[test]
    fn a_file_opens_once_at_a_time_as_a_locked_file_does() {
        let disk = SimDisk::new();
        let db = disk.open_database("x.redb").unwrap();
        let again = disk.open_database("x.redb").unwrap_err();
        assert!(meridian_consensus::disk::says_in_use(&again.to_string()), "{again}");
        drop(db);
        let db = disk.open_database("x.redb").expect("free once the first handle is gone");
        disk.crash();
        drop(db);
        disk.open_database("x.redb").expect("a crash frees every handle");
    }
}
