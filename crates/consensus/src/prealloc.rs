//! Space allocated ahead of a growing file: when redb extends one of its files, the blocks for the next
//! [`ALLOCATE_AHEAD`] bytes past the new end are allocated too (`fallocate` with `FALLOC_FL_KEEP_SIZE`, so the
//! file's length is what redb set). redb treats a failed write as fatal for the whole database, so a disk that
//! fills up all at once (another tenant) must not be able to fail the next few commits: they grow into blocks that
//! are already the file's, and the member's free-space check (`space_watch` in the server) has time to stop
//! writes. Where the file system cannot allocate ahead, files grow as before.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// How far past its end a growing file is allocated.
pub const ALLOCATE_AHEAD: u64 = 16 << 20;

/// A file backend whose growth is allocated ahead (see the module comment).
#[derive(Debug)]
pub(crate) struct Preallocated {
    inner: FileBackend,
    /// A second handle on the same file, for `fallocate`.
    file: File,
    /// The file's blocks are allocated up to here.
    allocated_to: AtomicU64,
    /// How far ahead to allocate; 0 for a file that allocates itself.
    ahead: u64,
}

impl Preallocated {
    /// `file`, allocated `ahead` bytes past its end as it grows (0: never).
    pub(crate) fn new(file: File, ahead: u64) -> io::Result<Preallocated> {
        let handle = file.try_clone()?;
        let inner = FileBackend::new(file).map_err(|e| io::Error::other(redb::Error::from(e)))?;
        // Nothing is known to be allocated yet: a file extended by `set_len` has holes below its end, which the
        // first allocation fills (cheap where blocks already are).
        Ok(Preallocated { inner, file: handle, allocated_to: AtomicU64::new(0), ahead })
    }

    /// Once the file reaches within half of `ahead` of what is allocated, allocates every block from there to
    /// `end + ahead` without changing the length (holes `set_len` left below `end` included). Best effort:
    /// failing here only means the file grows as before.
    fn allocate_past(&self, end: u64) {
        let allocated = self.allocated_to.load(Ordering::Relaxed);
        if self.ahead == 0 || end + self.ahead / 2 <= allocated {
            return;
        }
        let flags = rustix::fs::FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(&self.file, flags, allocated, end + self.ahead - allocated) {
            Ok(()) => self.allocated_to.store(end + self.ahead, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "allocating ahead of a growing file"),
        }
    }
}

impl StorageBackend for Preallocated {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.allocate_past(len);
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.allocate_past(offset + data.len() as u64);
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn growing_a_file_allocates_ahead_without_changing_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        let backend = Preallocated::new(file, ALLOCATE_AHEAD).unwrap();
        backend.set_len(1 << 20).unwrap();
        backend.write(0, &[7; 4096]).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1 << 20, "the length is what was set");
        assert!(
            meta.blocks() * 512 >= (1 << 20) + ALLOCATE_AHEAD,
            "the hole below the end and the space ahead are allocated: {} bytes",
            meta.blocks() * 512
        );
        let mut back = [0; 4096];
        backend.read(0, &mut back).unwrap();
        assert_eq!(back, [7; 4096]);
    }
}
