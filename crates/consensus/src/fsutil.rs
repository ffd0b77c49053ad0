//! Small file-system and lifecycle helpers shared by the storage modules.
//!
//! A file created or renamed is only durable once its directory entry is: `fsync_dir` after
//! every create/rename. `DropSignal` lets `RaftNode::shutdown` wait until openraft's tasks have
//! really released the storage objects, so a restart in the same process can reopen the redb files
//! (redb refuses to open a database that is still open). `SyncingWriter` writes a large file back
//! as it goes, and `run_at_low_priority` keeps long background work from taking the CPU the
//! latency-bound threads need.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

/// fsync a directory so that entries created or renamed in it survive a crash.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Create `dir` (and parents) if needed, private to the server's user (0700), making the new entries durable.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    fsync_dir(dir)
}

/// Writes to a file and syncs it after every `every` bytes, so a large file (a snapshot dump of
/// tens of megabytes) goes to the disk in steps. Left to one sync at the end, its writeback was
/// queued ahead of the Raft log's small fsyncs on the same disk, which then waited for all of it.
pub(crate) struct SyncingWriter {
    file: File,
    every: u64,
    unsynced: u64,
}

impl SyncingWriter {
    pub(crate) fn new(file: File, every: u64) -> SyncingWriter {
        SyncingWriter { file, every, unsynced: 0 }
    }

    /// Syncs what is left and hands the file back.
    pub(crate) fn finish(self) -> io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for SyncingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= self.every {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The nice value of [`run_at_low_priority`]'s thread.
const LOW_PRIORITY_NICE: i32 = 10;

/// Runs `work` on a thread of its own at a lower CPU priority and waits for it. For long work that
/// nobody waits on closely, such as a snapshot dump: ~1.2 s per member at 400 000 revisions,
/// which on two CPUs shared by three members otherwise delays every write and watch event. Linux
/// keeps a nice value per thread, and an unprivileged thread cannot raise it back, hence a thread
/// that ends with the work.
pub(crate) fn run_at_low_priority<T: Send>(work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new().name("low-priority".into()).spawn_scoped(scope, || {
            // Best effort: where it is refused the work runs at the usual priority.
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), LOW_PRIORITY_NICE);
            work()
        })?;
        worker.join().map_err(|_| io::Error::other("a low-priority thread panicked"))?
    })
}

/// Fires when dropped. Put it as the last field of the owning struct so it fires after the other
/// fields (struct fields drop in declaration order).
pub(crate) struct DropSignal(Option<oneshot::Sender<()>>);

/// The receiving side of a [`DropSignal`].
pub(crate) struct DropWaiter(oneshot::Receiver<()>);

impl DropSignal {
    pub(crate) fn new() -> (DropSignal, DropWaiter) {
        let (tx, rx) = oneshot::channel();
        (DropSignal(Some(tx)), DropWaiter(rx))
    }
}

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl DropWaiter {
    /// Wait until the signal is dropped; false if that did not happen within `timeout`.
    pub(crate) async fn wait(self, timeout: Duration) -> bool {
        // A closed channel (sender dropped without sending) also means "dropped".
        tokio::time::timeout(timeout, self.0).await.is_ok()
    }

    /// Whether the signal is dropped already, without waiting.
    #[cfg(test)]
    pub(crate) fn fired(&mut self) -> bool {
        !matches!(self.0.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_priority_work_runs_at_a_lower_priority_and_returns_its_result() {
        let here = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = here();
        let inside = run_at_low_priority(|| Ok(here())).unwrap();
        assert!(inside >= LOW_PRIORITY_NICE.max(before), "nice {inside} inside, {before} outside");
        assert_eq!(here(), before, "the caller's priority changed");
        let failed = run_at_low_priority(|| -> io::Result<()> { Err(io::Error::other("boom")) });
        assert_eq!(failed.unwrap_err().to_string(), "boom");
    }

    #[test]
    fn a_syncing_writer_writes_everything_it_is_given() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("f");
        let mut w = io::BufWriter::with_capacity(1000, SyncingWriter::new(File::create(&path).unwrap(), 4096));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        w.into_inner().map_err(io::IntoInnerError::into_error).unwrap().finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
