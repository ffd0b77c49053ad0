//! `KvStore`: the in-memory state (key index with cached live values, lease table, current and compact
//! revisions, lease-id counter) over a `Backend`, how it is rebuilt from storage (`open`), and how applied
//! changes are persisted (`stage_meta`, `commit`, `commit_and_view`). Applying commands lives in `apply`,
//! reads in `range` and `history`.

use std::collections::BTreeMap;

use meridian_proto::mvccpb::KeyValue;
use meridian_types::Revision;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::key_index::KeyIndex;
use crate::key_range::KeyRange;
use crate::lease::{self, LeaseTable};
use crate::pending::Pending;
use crate::record::Record;
use crate::revision::RevisionKey;

/// Prefix of the metadata keys owned by `KvStore`; callers of [`KvStore::commit`] must use other keys.
pub const META_PREFIX: &str = "kv/";
pub(crate) const META_CURRENT: &str = "kv/current_revision";
pub(crate) const META_COMPACT: &str = "kv/compact_revision";
pub(crate) const META_NEXT_LEASE: &str = "kv/next_lease_id";

/// The MVCC state machine over a storage backend.
#[derive(Debug)]
pub struct KvStore<B: Backend> {
    pub(crate) backend: B,
    pub(crate) index: BTreeMap<Vec<u8>, KeyIndex>,
    pub(crate) current: i64,
    pub(crate) compact: i64,
    pub(crate) leases: LeaseTable,
    /// Next id tried for a LeaseGrant with id 0; only grows, so auto ids are never reused.
    pub(crate) next_lease_id: i64,
    pub(crate) pending: Pending,
}

impl<B: Backend> KvStore<B> {
    /// Rebuild the in-memory index from the backend (records, leases and `kv/` metadata).
    pub fn open(backend: B) -> Result<Self> {
        let mut store = KvStore {
            current: meta_i64(META_CURRENT, backend.meta(META_CURRENT)?)?.unwrap_or(1).max(1),
            compact: meta_i64(META_COMPACT, backend.meta(META_COMPACT)?)?.unwrap_or(0).max(0),
            next_lease_id: meta_i64(META_NEXT_LEASE, backend.meta(META_NEXT_LEASE)?)?.unwrap_or(1).max(1),
            backend,
            index: BTreeMap::new(),
            leases: LeaseTable::default(),
            pending: Pending::default(),
        };
        for (id, bytes) in store.backend.leases()? {
            store.leases.insert(id, lease::decode_lease(id, &bytes)?);
        }
        let mut max_main = 0;
        let index = &mut store.index;
        store.backend.scan_records(RevisionKey::MIN, &mut |rev, bytes| {
            let rec = Record::decode(rev, bytes)?;
            max_main = max_main.max(rev.main);
            let key = rec.kv.key.clone();
            let ki = index.entry(key).or_default();
            if rec.tombstone {
                ki.tombstone(rev);
            } else {
                ki.put(rev, rec.kv);
            }
            Ok(true)
        })?;
        store.current = store.current.max(max_main);
        for (key, ki) in &store.index {
            if let Some(kv) = &ki.latest {
                // Attachments are derived from the keys, as etcd does, so they are never stored twice.
                store.leases.attach(kv.lease, key);
            }
        }
        Ok(store)
    }

    /// The storage backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The current revision; 1 on an empty store.
    pub fn current_revision(&self) -> Revision {
        Revision(self.current)
    }

    /// The revision of the last compaction; 0 if never compacted.
    pub fn compact_revision(&self) -> Revision {
        Revision(self.compact)
    }

    /// Whether changes were applied since the last commit.
    pub fn has_uncommitted(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Number of record and lease changes waiting for the next commit.
    pub fn pending_len(&self) -> usize {
        self.pending.records.len() + self.pending.leases.len()
    }

    /// Approximate bytes of the changes waiting for the next commit.
    pub fn pending_bytes(&self) -> usize {
        self.pending.bytes
    }

    /// Stage caller metadata (e.g. the applied raft log id) to be written by the next commit, in the
    /// same transaction as the changes applied so far, whoever triggers that commit. A later value for
    /// the same key replaces an earlier one; keys starting with [`META_PREFIX`] are ignored. Visible at
    /// once through [`KvStore::meta`].
    pub fn stage_meta(&mut self, meta: Vec<(String, Vec<u8>)>) {
        for (k, v) in meta {
            if !k.starts_with(META_PREFIX) {
                self.pending.meta.insert(k, v);
            }
        }
    }

    /// Persist everything applied since the last commit, together with staged and the given caller
    /// metadata (see [`KvStore::stage_meta`]), in ONE backend transaction. Does nothing when there is
    /// nothing to write. On failure the changes stay pending.
    pub fn commit(&mut self, meta: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.stage_meta(meta);
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.pending.take_batch(self.own_meta());
        if let Err(e) = self.backend.commit(&batch) {
            self.pending.put_back(batch);
            return Err(e);
        }
        Ok(())
    }

    /// Commit everything pending, then open a backend view: the view holds exactly the state reads see
    /// now (data, `kv/` and staged metadata), and stays so while the store moves on. Dump it with
    /// [`crate::snapshot_of_view`] after releasing any lock around the store.
    pub fn commit_and_view(&mut self) -> Result<B::View> {
        self.commit(Vec::new())?;
        self.backend.view()
    }

    pub(crate) fn own_meta(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (META_CURRENT.to_owned(), self.current.to_be_bytes().to_vec()),
            (META_COMPACT.to_owned(), self.compact.to_be_bytes().to_vec()),
            (META_NEXT_LEASE.to_owned(), self.next_lease_id.to_be_bytes().to_vec()),
        ]
    }

    /// The live value of `key` in the current state (including the writes of a txn in progress).
    pub(crate) fn live(&self, key: &[u8]) -> Option<&KeyValue> {
        self.index.get(key).and_then(|ki| ki.latest.as_ref())
    }

    /// Live values in `range`, in key order.
    pub(crate) fn live_in<'a>(&'a self, range: &KeyRange) -> impl Iterator<Item = &'a KeyValue> + 'a {
        range.iter(&self.index).filter_map(|(_, ki)| ki.latest.as_ref())
    }
}

/// Decodes a stored `kv/` counter.
pub(crate) fn meta_i64(key: &str, stored: Option<Vec<u8>>) -> Result<Option<i64>> {
    match stored {
        None => Ok(None),
        Some(bytes) => {
            let arr: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::corrupt(format!("meta {key} is {} bytes", bytes.len())))?;
            Ok(Some(i64::from_be_bytes(arr)))
        }
    }
}
