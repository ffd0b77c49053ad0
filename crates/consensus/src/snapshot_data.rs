//! What a snapshot's data is as openraft carries it: bytes in the kv snapshot format, or a frozen
//! view of this member's own kv store that becomes bytes only when a peer needs them.
//!
//! A snapshot this member builds is its `state.redb` as of the snapshot's last log id, held open as
//! a redb read transaction, as etcd's snapshot is its backend database at an index. Building one
//! costs a sync of the kv store; the store is dumped only when a lagging follower or a new learner
//! needs it sent. Dumping it at every build wrote the whole store (150 MB at 450 000 revisions)
//! on every member at once, every 100 000 entries, and that writeback sat in the disk's queue ahead
//! of the Raft log's fsyncs.
//!
//! Received snapshots stay bytes: the transport decodes them so, and `snapshot.bin` holds them.

use std::fmt;
use std::io;
use std::sync::Arc;

use meridian_kv::write_snapshot_of_view;

use crate::disk::{Disk, run_blocking};
use crate::fsutil::{DropSignal, run_at_low_priority};
use crate::kv_backend::RedbView;
use crate::types::SnapshotMeta;

/// The data of a snapshot.
#[derive(Clone)]
pub enum SnapshotData {
    /// The kv store in the snapshot format (`meridian_kv::KvStore::restore_with_meta` reads it).
    Bytes(Vec<u8>),
    /// This member's kv store frozen at the snapshot's last log id.
    View(Arc<FrozenView>),
}

impl SnapshotData {
    /// The data in the snapshot format. A view is dumped on a blocking thread at low priority
    /// (inline where the disk runs blocking work inline, as in the simulation).
    pub async fn into_bytes(self) -> io::Result<Vec<u8>> {
        let view = match self {
            SnapshotData::Bytes(bytes) => return Ok(bytes),
            SnapshotData::View(view) => view,
        };
        let disk = view.disk.clone();
        let on_threads = disk.blocking_on_threads();
        run_blocking(&*disk, move || {
            let dump = || {
                let mut out = Vec::new();
                write_snapshot_of_view(&view.view, &mut out).map_err(io::Error::other)?;
                Ok(out)
            };
            if on_threads { run_at_low_priority(dump) } else { dump() }
        })
        .await
    }
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotData::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            SnapshotData::View(view) => write!(f, "View(at {:?})", view.meta.last_log_id),
        }
    }
}

/// A read transaction on the kv store, opened when the snapshot was taken, with what it is a
/// snapshot of. While it lives, redb keeps the pages it reads: the store grows by what changes
/// until the next snapshot replaces it.
pub struct FrozenView {
    pub(crate) meta: SnapshotMeta,
    view: RedbView,
    disk: Arc<dyn Disk>,
    /// The view keeps `state.redb` open, so a restart in the same process waits for it too.
    _alive: Arc<DropSignal>,
}

impl FrozenView {
    pub(crate) fn new(meta: SnapshotMeta, view: RedbView, disk: Arc<dyn Disk>, alive: Arc<DropSignal>) -> Self {
        FrozenView { meta, view, disk, _alive: alive }
    }
}
