//! `KvStore`: the in-memory state (key index with the live keys' metadata, lease table, current and compact
//! revisions, lease-id counter) over a `Backend`, how it is rebuilt from storage (`open`), and how applied
//! changes are persisted (`stage_meta`, `commit`, `commit_and_view`). Applying commands lives in `apply`,
//! reads in `range` and `history`.

use std::collections::BTreeMap;

use meridian_proto::mvccpb::KeyValue;
use meridian_types::Revision;

use crate::alarm::AlarmTable;
use crate::auth::AuthStore;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::key_index::{KeyIndex, LiveMeta};
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
pub(crate) const META_ALARMS: &str = "kv/alarms";
pub(crate) const META_AUTH: &str = "kv/auth";

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
    /// The active alarms (see `alarm`).
    pub(crate) alarms: AlarmTable,
    /// Users, roles and the auth switch (see `auth`).
    pub(crate) auth: AuthStore,
    pub(crate) pending: Pending,
    /// Set while a client's command applies: its range deletes spare the reserved keyspace.
    pub(crate) sparing_reserved: bool,
}

impl<B: Backend> KvStore<B> {
    /// Rebuild the in-memory index from the backend (records, leases and `kv/` metadata).
    pub fn open(backend: B) -> Result<Self> {
        let mut store = KvStore {
            current: meta_i64(META_CURRENT, backend.meta(META_CURRENT)?)?.unwrap_or(1).max(1),
            compact: meta_i64(META_COMPACT, backend.meta(META_COMPACT)?)?.unwrap_or(0).max(0),
            next_lease_id: meta_i64(META_NEXT_LEASE, backend.meta(META_NEXT_LEASE)?)?.unwrap_or(1).max(1),
            alarms: match backend.meta(META_ALARMS)? {
                Some(bytes) => AlarmTable::decode(&bytes)?,
                None => AlarmTable::default(),
            },
            auth: match backend.meta(META_AUTH)? {
                Some(bytes) => AuthStore::decode(&bytes)?,
                None => AuthStore::default(),
            },
            backend,
            index: BTreeMap::new(),
            leases: LeaseTable::default(),
            pending: Pending::default(),
            sparing_reserved: false,
        };
        for (id, bytes) in store.backend.leases()? {
            store.leases.insert(id, lease::decode_lease(id, &bytes)?);
        }
        let mut max_main = 0;
        let index = &mut store.index;
        store.backend.scan_records(RevisionKey::MIN, &mut |rev, bytes| {
            let rec = Record::decode(rev, bytes)?;
            max_main = max_main.max(rev.main);
            let kv = rec.kv;
            let live = LiveMeta { create_revision: kv.create_revision, version: kv.version, lease: kv.lease };
            let ki = index.entry(kv.key).or_default();
            if rec.tombstone {
                ki.tombstone(rev);
            } else {
                ki.put(rev, live);
            }
            Ok(true)
        })?;
        store.current = store.current.max(max_main);
        for (key, ki) in &store.index {
            if let Some(live) = &ki.live {
                // Attachments are derived from the keys, as etcd does, so they are never stored twice.
                store.leases.attach(live.lease, key);
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

    /// The active alarms.
    pub fn alarms(&self) -> &AlarmTable {
        &self.alarms
    }

    /// Users, roles and the auth switch.
    pub fn auth(&self) -> &AuthStore {
        &self.auth
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
    /// [`crate::write_snapshot_of_view`] or [`crate::write_etcd_db_of_view`] after releasing any lock around the store.
    pub fn commit_and_view(&mut self) -> Result<B::View> {
        self.commit(Vec::new())?;
        self.backend.view()
    }

    pub(crate) fn own_meta(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (META_CURRENT.to_owned(), self.current.to_be_bytes().to_vec()),
            (META_COMPACT.to_owned(), self.compact.to_be_bytes().to_vec()),
            (META_NEXT_LEASE.to_owned(), self.next_lease_id.to_be_bytes().to_vec()),
            (META_ALARMS.to_owned(), self.alarms.encode()),
            (META_AUTH.to_owned(), self.auth.encode()),
        ]
    }

    /// Whether `key` is live in the current state (including the writes of a txn in progress).
    pub(crate) fn is_live(&self, key: &[u8]) -> bool {
        self.index.get(key).is_some_and(|ki| ki.live.is_some())
    }

    /// The live value of `key` in the current state (including the writes of a txn in progress), read
    /// from storage.
    pub(crate) fn live(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        match self.index.get(key).and_then(KeyIndex::live_rev) {
            Some(rev) => Ok(self.load_records(&[rev])?.pop().map(|rec| rec.kv)),
            None => Ok(None),
        }
    }

    /// The live keys in `range`, in key order.
    pub(crate) fn live_keys_in(&self, range: &KeyRange) -> Vec<Vec<u8>> {
        range.iter(&self.index).filter(|(_, ki)| ki.live.is_some()).map(|(k, _)| k.clone()).collect()
    }

    /// The live keys in `range` with everything but their values (left empty), in key order: enough for
    /// compares on versions, revisions and leases without reading storage.
    pub(crate) fn live_meta_in(&self, range: &KeyRange) -> Vec<KeyValue> {
        range
            .iter(&self.index)
            .filter_map(|(key, ki)| {
                let (live, rev) = (ki.live?, ki.live_rev()?);
                Some(KeyValue {
                    key: key.clone(),
                    create_revision: live.create_revision,
                    mod_revision: rev.main,
                    version: live.version,
                    value: Vec::new(),
                    lease: live.lease,
                })
            })
            .collect()
    }

    /// The live values in `range`, in key order, read from storage.
    pub(crate) fn live_in(&self, range: &KeyRange) -> Result<Vec<KeyValue>> {
        let revs: Vec<RevisionKey> = range.iter(&self.index).filter_map(|(_, ki)| ki.live_rev()).collect();
        Ok(self.load_records(&revs)?.into_iter().map(|rec| rec.kv).collect())
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
