//! The storage seam: the `Backend` trait that `KvStore` persists through, `WriteBatch`, the atomic
//! unit of persistence, and `BackendView`, a frozen point-in-time view used to dump snapshots without
//! holding up writers. Implementations: `MemBackend` (this crate, tests and simulation) and the redb
//! backend in `consensus`.

use crate::error::Result;
use crate::revision::RevisionKey;

/// Atomic unit of persistence. Everything in one batch lands in one storage transaction.
///
/// `KvStore` never names the same record or lease in both a put and a delete list of one batch; a backend
/// may apply the lists in any order.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// MVCC records to write, keyed by revision.
    pub put_records: Vec<(RevisionKey, Vec<u8>)>,
    /// MVCC records to remove (compaction).
    pub delete_records: Vec<RevisionKey>,
    /// Leases to write, keyed by lease id.
    pub put_leases: Vec<(i64, Vec<u8>)>,
    /// Leases to remove (revocation).
    pub delete_leases: Vec<i64>,
    /// Metadata entries to write. Keys starting with [`crate::META_PREFIX`] belong to `KvStore`.
    pub put_meta: Vec<(String, Vec<u8>)>,
}

impl WriteBatch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.put_records.is_empty()
            && self.delete_records.is_empty()
            && self.put_leases.is_empty()
            && self.delete_leases.is_empty()
            && self.put_meta.is_empty()
    }
}

/// A consistent, read-only view of a backend's committed contents as of the moment it was opened.
///
/// Later commits do not change what a view shows, and a view does not block them, so a long scan (a
/// snapshot dump) can run while the store keeps applying. Every method may fail with
/// [`crate::Error::Backend`].
pub trait BackendView: Send + 'static {
    /// Visit records with key >= from in revision order until `visit` returns Ok(false).
    fn scan_records(&self, from: RevisionKey, visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()>;
    /// Every stored lease, any order.
    fn leases(&self) -> Result<Vec<(i64, Vec<u8>)>>;
    /// One metadata entry.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
}

/// Storage seam: `MemBackend` (in kv, for tests and simulation) and `RedbBackend` (in consensus, for the
/// server). Every method may fail with [`crate::Error::Backend`]; a failure is fatal for the node.
pub trait Backend: Send + Sync + 'static {
    /// The point-in-time view type of this backend.
    type View: BackendView;

    /// The stored bytes of each revision, `None` where absent, in the order asked.
    fn get_records(&self, revs: &[RevisionKey]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Visit records with key >= from in revision order until `visit` returns Ok(false).
    /// `visit` must not call back into the backend.
    fn scan_records(&self, from: RevisionKey, visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()>;
    /// Every stored lease, any order.
    fn leases(&self) -> Result<Vec<(i64, Vec<u8>)>>;
    /// One metadata entry.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Apply `batch` in one transaction (durable unless the backend was told otherwise). Borrowed, so
    /// the caller keeps the changes if the commit fails.
    fn commit(&self, batch: &WriteBatch) -> Result<()>;
    /// In one durable transaction: remove every record, lease and metadata entry (including metadata
    /// written by other layers), then apply `batch`. Used to install a snapshot, so a crash leaves
    /// either the old or the new state, never a mix.
    fn replace_all(&self, batch: WriteBatch) -> Result<()>;
    /// A view of everything committed so far (see [`BackendView`]).
    fn view(&self) -> Result<Self::View>;
    /// Approximate bytes on disk (Maintenance.Status dbSize).
    fn size_bytes(&self) -> u64;
    /// Bytes of the pages in use, the rest being free space a defragmentation would return (Maintenance.Status
    /// dbSizeInUse). May read the whole database's structure: call it off the async threads.
    fn size_in_use_bytes(&self) -> u64 {
        self.size_bytes()
    }
}
