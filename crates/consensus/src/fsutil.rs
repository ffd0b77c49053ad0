//! Small file-system and lifecycle helpers shared by the storage modules.
//!
//! A file created or renamed is only durable once its directory entry is: `fsync_dir` after
//! every create/rename. `DropSignal` lets `RaftNode::shutdown` wait until openraft's tasks have
//! really released the storage objects, so a restart in the same process can reopen the redb files
//! (redb refuses to open a database that is still open).

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

/// fsync a directory so that entries created or renamed in it survive a crash.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Create `dir` (and parents) if needed, making the new entries durable.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    fsync_dir(dir)
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
}
