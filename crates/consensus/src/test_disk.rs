//! A test double for the disk: the real directory, with hooks that run before one file's writes
//! and syncs reach it, to fail or hold them.

use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{BackendError, Database, StorageBackend};

use crate::disk::{Disk, OsDisk, database_on};
use crate::page_journal::DEFAULT_JOURNAL_BUDGET;

/// Runs before a write or a sync; an error is what the file then reports.
pub(crate) type Hook = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// What runs before the hooked file's writes and syncs.
#[derive(Clone)]
pub(crate) struct Hooks {
    pub(crate) before_write: Hook,
    pub(crate) before_sync: Hook,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks { before_write: Arc::new(|| Ok(())), before_sync: Arc::new(|| Ok(())) }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hooks")
    }
}

/// `dir` as an [`OsDisk`], with `hooks` on the file called `file`.
#[derive(Debug)]
pub(crate) struct HookedDisk {
    inner: OsDisk,
    file: &'static str,
    hooks: Hooks,
    journal_budget: u64,
}

impl HookedDisk {
    pub(crate) fn new(dir: &Path, file: &'static str, hooks: Hooks) -> io::Result<HookedDisk> {
        Ok(HookedDisk { inner: OsDisk::open(dir)?, file, hooks, journal_budget: DEFAULT_JOURNAL_BUDGET })
    }

    /// The same disk, with page journals that checkpoint once they hold `bytes`.
    pub(crate) fn with_journal_budget(self, bytes: u64) -> HookedDisk {
        HookedDisk { journal_budget: bytes, ..self }
    }
}

impl Disk for HookedDisk {
    fn open_database(&self, name: &str) -> io::Result<Database> {
        if name != self.file {
            return self.inner.open_database(name);
        }
        let backend = HookedFile { inner: self.inner.open_backend(name)?, hooks: self.hooks.clone() };
        database_on(backend)
    }
    fn open_backend(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let inner = self.inner.open_backend(name)?;
        if name != self.file {
            return Ok(inner);
        }
        Ok(Box::new(HookedFile { inner, hooks: self.hooks.clone() }))
    }
    fn journal_budget(&self) -> u64 {
        self.journal_budget
    }
    fn open_file(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send>>> {
        self.inner.open_file(name)
    }
    fn replace_file_with(&self, name: &str, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        self.inner.replace_file_with(name, write)
    }
    fn file_size(&self, name: &str) -> u64 {
        self.inner.file_size(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, name: &str) -> io::Result<()> {
        self.inner.remove_file(name)
    }
    fn free_bytes(&self) -> Option<u64> {
        self.inner.free_bytes()
    }
}

#[derive(Debug)]
struct HookedFile {
    inner: Box<dyn StorageBackend>,
    hooks: Hooks,
}

impl StorageBackend for HookedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        (self.hooks.before_sync)()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        (self.hooks.before_write)()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }
    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
