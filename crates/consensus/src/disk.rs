//! The storage seam: where a member's files live and how blocking storage work runs.
//!
//! The consensus layer keeps four files per member: the Raft log and the state machine (both redb
//! databases), the Raft log's page journal and the current snapshot. A [`Disk`] opens them. [`OsDisk`] is the real directory;
//! the simulation plugs in a disk that keeps its bytes in memory and loses every write not yet
//! synced when the simulated host crashes, so the same log store and state machine code is tested
//! against torn, unsynced state.
//!
//! The disk also decides where blocking storage work (the log's group-commit writer, snapshot
//! builds and installs) runs: on threads for a real server, inline on the calling task for the
//! simulation, whose single-threaded scheduler is only reproducible if no other thread races it.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, StorageBackend};

use crate::fsutil::{SyncingWriter, ensure_dir, fsync_dir};
use crate::page_journal::{CommitHook, DEFAULT_JOURNAL_BUDGET, JournaledBackend};
use crate::prealloc::{ALLOCATE_AHEAD, Preallocated};

/// redb's page cache per database. redb's default (1 GiB each) let a member's heap grow with its data set
/// to several times etcd's resident size; the operating system's page cache keeps serving cold pages, and
/// the Raft log has its own entry cache in front of redb.
const REDB_CACHE_BYTES: usize = 64 << 20;
/// A file written through `replace_file_with` is synced after every this many bytes (see
/// `SyncingWriter`).
const REPLACE_SYNC_EVERY_BYTES: u64 = 2 << 20;
/// Files the server creates in its data dir are readable by its own user only.
const PRIVATE_FILE_MODE: u32 = 0o600;

/// Where a member's storage lives.
pub trait Disk: Debug + Send + Sync + 'static {
    /// Opens (or creates) the redb database called `name`; a newly created file is durable in its
    /// directory before this returns.
    fn open_database(&self, name: &str) -> io::Result<Database>;

    /// Opens (or creates) the file called `name` as raw storage, held by this process alone; a newly
    /// created file is durable in its directory before this returns.
    fn open_backend(&self, name: &str) -> io::Result<Box<dyn StorageBackend>>;

    /// Journal bytes after which a page journal checkpoints (see `page_journal`).
    fn journal_budget(&self) -> u64 {
        DEFAULT_JOURNAL_BUDGET
    }

    /// A reader over the file called `name`, or `None` when there is no such file.
    fn open_file(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send>>>;

    /// Durably replaces the file called `name` with what `write` writes: after a crash the file holds
    /// either the old content or all of the new one. If `write` fails, the old file stays.
    fn replace_file_with(&self, name: &str, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<()>;

    /// Size in bytes of the file called `name` (0 when missing).
    fn file_size(&self, name: &str) -> u64;

    /// Durably renames the file `from` to `to`, replacing `to`. Handles open on the old `to` go on reading it.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Durably removes the file called `name`, if there is one. Open handles go on reading it.
    fn remove_file(&self, name: &str) -> io::Result<()>;

    /// Bytes an unprivileged writer may still add to the file system the files are on (`None`: not known).
    fn free_bytes(&self) -> Option<u64> {
        None
    }

    /// Whether blocking storage work may run on other threads (`false`: run it inline on the
    /// calling task, as the deterministic simulation needs).
    fn blocking_on_threads(&self) -> bool {
        true
    }

    /// On a disk that runs blocking work inline: how long each Raft log sync takes, in the runtime's
    /// (simulated) time, drawn once per sync; `None` for no time at all. With latencies the log is
    /// written by a task that waits out each synced batch's latency first, so members' syncs finish at
    /// different moments and a crash can cut one short, as on a real disk: followers may acknowledge
    /// an entry before the leader's own copy is durable.
    fn log_sync_latencies(&self) -> Option<SyncLatencies> {
        None
    }
}

/// A source of sync latencies (see [`Disk::log_sync_latencies`]).
pub type SyncLatencies = Box<dyn FnMut() -> std::time::Duration + Send>;

/// Runs `work` as the disk wants blocking work run: on tokio's blocking pool, or inline.
pub(crate) async fn run_blocking<T, F>(disk: &dyn Disk, work: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    if disk.blocking_on_threads() { tokio::task::spawn_blocking(work).await.map_err(io::Error::other)? } else { work() }
}

/// Opens a redb database over any storage backend (the simulation's in-memory files).
pub fn database_on<B: StorageBackend>(backend: B) -> io::Result<Database> {
    Database::builder()
        .set_cache_size(REDB_CACHE_BYTES)
        .create_with_backend(backend)
        .map_err(|e| io::Error::other(redb::Error::from(e)))
}

/// Opens the redb database `name` over a page journal kept in the file `journal` (see
/// `page_journal`): a commit costs one sequential journal write and sync. The hook runs a callback
/// once a commit is durable.
pub(crate) fn open_journaled_database(
    disk: &dyn Disk,
    name: &str,
    journal: &str,
) -> io::Result<(Database, Arc<CommitHook>)> {
    // The journal first: holding it keeps a second process from replaying under this one.
    let journal = disk.open_backend(journal)?;
    let main = disk.open_backend(name)?;
    let hook = Arc::new(CommitHook::default());
    let (backend, recovery) = JournaledBackend::open(main, journal, disk.journal_budget(), hook.clone())?;
    if recovery.records > 0 {
        tracing::info!(records = recovery.records, "replayed the page journal of {name}");
    }
    Ok((database_on(backend)?, hook))
}

/// A directory of the real file system.
#[derive(Clone, Debug)]
pub struct OsDisk {
    dir: PathBuf,
}

impl OsDisk {
    /// Uses `dir`, creating it (durably) if needed.
    pub fn open(dir: &Path) -> io::Result<OsDisk> {
        ensure_dir(dir)?;
        Ok(OsDisk { dir: dir.to_path_buf() })
    }

    /// Like [`OsDisk::open`], shared.
    pub fn shared(dir: &Path) -> io::Result<Arc<dyn Disk>> {
        Ok(Arc::new(Self::open(dir)?))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (or creates, durably in the directory) the file called `name`, locked by this process
    /// alone, as redb storage.
    fn file_backend(&self, name: &str) -> io::Result<Preallocated> {
        let path = self.dir.join(name);
        let existed = path.exists();
        // Private to the server's user (0600), whatever the umask.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(&path)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => in_use(&path.display().to_string()),
            std::fs::TryLockError::Error(e) => e,
        })?;
        if !existed {
            fsync_dir(&self.dir)?;
        }
        // A page journal preallocates itself (see `page_journal`); redb's files get space ahead.
        let ahead = if name.ends_with(".journal") { 0 } else { ALLOCATE_AHEAD };
        Preallocated::new(file, ahead)
    }
}

impl Disk for OsDisk {
    fn open_database(&self, name: &str) -> io::Result<Database> {
        database_on(self.file_backend(name)?)
    }

    fn open_backend(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(self.file_backend(name)?))
    }

    fn file_size(&self, name: &str) -> u64 {
        std::fs::metadata(self.dir.join(name)).map(|m| m.len()).unwrap_or(0)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        fsync_dir(&self.dir)
    }

    fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    fn remove_file(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => fsync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn open_file(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send>>> {
        match std::fs::File::open(self.dir.join(name)) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write a temp file (synced as it grows, see `SyncingWriter`), fsync it, rename it over the old
    /// one, fsync the directory.
    fn replace_file_with(&self, name: &str, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(PRIVATE_FILE_MODE)
                .open(&tmp)?;
            let file = SyncingWriter::new(created, REPLACE_SYNC_EVERY_BYTES);
            let mut f = io::BufWriter::with_capacity(1 << 20, file);
            write(&mut f)?;
            f.into_inner().map_err(io::IntoInnerError::into_error)?.finish()?;
        }
        std::fs::rename(&tmp, self.dir.join(name))?;
        fsync_dir(&self.dir)
    }
}

/// The error of opening `file` while another handle holds it (another process, or the previous life of this member in
/// this process, not yet wound down); [`says_in_use`] recognises it.
pub fn in_use(file: &str) -> io::Error {
    io::Error::other(format!("{file} {IN_USE}"))
}

/// Whether an error's text says a file was in use ([`in_use`]).
pub fn says_in_use(text: &str) -> bool {
    text.contains(IN_USE)
}

const IN_USE: &str = "is in use by another process";

#[cfg(test)]
mod permission_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_dir_and_its_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let disk = OsDisk::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        drop(disk.open_database("state.redb").unwrap());
        disk.replace_file_with("snapshot.bin", &mut |w| w.write_all(b"x")).unwrap();
        assert_eq!(mode(&dir.join("state.redb")), 0o600);
        assert_eq!(mode(&dir.join("snapshot.bin")), 0o600);
    }
}
