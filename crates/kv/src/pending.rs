//! The not-yet-committed changes of a `KvStore`, and the read paths that look through them to the
//! backend. Reads must see applied-but-uncommitted changes, so every record lookup, scan and metadata
//! read consults this overlay first. Callers may let many applied commands accumulate here and commit
//! them in one backend transaction (see `consensus::state_machine`).

use std::collections::BTreeMap;

use crate::backend::{Backend, WriteBatch};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::revision::RevisionKey;
use crate::store::{KvStore, META_PREFIX};

/// Changes applied since the last commit. `None` marks a deletion.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub records: BTreeMap<RevisionKey, Option<Vec<u8>>>,
    pub leases: BTreeMap<i64, Option<Vec<u8>>>,
    /// Caller metadata (e.g. the raft applied log id) describing the state these changes lead to.
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Revisions, compact revision or lease counter changed.
    pub meta_dirty: bool,
    /// Approximate bytes held (stored record and lease bytes); overwrites are counted twice.
    pub bytes: usize,
}

impl Pending {
    pub fn put_record(&mut self, rev: RevisionKey, bytes: Vec<u8>) {
        self.bytes += bytes.len() + RevisionKey::LEN;
        self.records.insert(rev, Some(bytes));
    }

    pub fn delete_record(&mut self, rev: RevisionKey) {
        self.bytes += RevisionKey::LEN;
        self.records.insert(rev, None);
    }

    pub fn put_lease(&mut self, id: i64, bytes: Vec<u8>) {
        self.bytes += bytes.len() + 8;
        self.leases.insert(id, Some(bytes));
    }

    pub fn delete_lease(&mut self, id: i64) {
        self.bytes += 8;
        self.leases.insert(id, None);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.leases.is_empty() && self.meta.is_empty() && !self.meta_dirty
    }

    /// Moves every change into the batch that persists it, with `own_meta` (the store's `kv/` entries)
    /// first. Moved, not copied: on a failed commit [`Pending::put_back`] restores them.
    pub fn take_batch(&mut self, own_meta: Vec<(String, Vec<u8>)>) -> WriteBatch {
        let taken = std::mem::take(self);
        let mut batch = WriteBatch { put_meta: own_meta, ..Default::default() };
        batch.put_meta.extend(taken.meta);
        for (rev, bytes) in taken.records {
            match bytes {
                Some(b) => batch.put_records.push((rev, b)),
                None => batch.delete_records.push(rev),
            }
        }
        for (id, bytes) in taken.leases {
            match bytes {
                Some(b) => batch.put_leases.push((id, b)),
                None => batch.delete_leases.push(id),
            }
        }
        batch
    }

    /// Undoes [`Pending::take_batch`] after a failed commit. Changes applied in between (none, as the
    /// store is borrowed mutably throughout a commit) would win.
    pub fn put_back(&mut self, batch: WriteBatch) {
        for (rev, bytes) in batch.put_records {
            self.records.entry(rev).or_insert_with(|| Some(bytes));
        }
        for rev in batch.delete_records {
            self.records.entry(rev).or_insert(None);
        }
        for (id, bytes) in batch.put_leases {
            self.leases.entry(id).or_insert_with(|| Some(bytes));
        }
        for id in batch.delete_leases {
            self.leases.entry(id).or_insert(None);
        }
        for (key, bytes) in batch.put_meta {
            if !key.starts_with(META_PREFIX) {
                self.meta.entry(key).or_insert(bytes);
            }
        }
        self.meta_dirty = true;
        self.bytes = self.records.values().map(|b| b.as_ref().map_or(0, Vec::len) + RevisionKey::LEN).sum::<usize>()
            + self.leases.values().map(|b| b.as_ref().map_or(0, Vec::len) + 8).sum::<usize>();
    }
}

impl<B: Backend> KvStore<B> {
    /// One metadata entry as the next commit will leave it: staged caller metadata first, then the
    /// backend. (The store's own `kv/` entries are kept in memory and read through their accessors.)
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.pending.meta.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.backend.meta(key),
        }
    }

    /// Loads and decodes the records at `revs` (pending overlay first). A missing record is corruption:
    /// the index only names records that exist.
    pub(crate) fn load_records(&self, revs: &[RevisionKey]) -> Result<Vec<Record>> {
        let mut out: Vec<Option<Record>> = Vec::with_capacity(revs.len());
        let mut from_backend = Vec::new();
        for (i, rev) in revs.iter().enumerate() {
            match self.pending.records.get(rev) {
                Some(Some(bytes)) => out.push(Some(Record::decode(*rev, bytes)?)),
                Some(None) => return Err(missing(*rev)),
                None => {
                    out.push(None);
                    from_backend.push((i, *rev));
                }
            }
        }
        if !from_backend.is_empty() {
            let wanted: Vec<RevisionKey> = from_backend.iter().map(|(_, r)| *r).collect();
            let got = self.backend.get_records(&wanted)?;
            if got.len() != wanted.len() {
                return Err(Error::Backend(format!("get_records returned {} of {} records", got.len(), wanted.len())));
            }
            for ((i, rev), bytes) in from_backend.into_iter().zip(got) {
                let bytes = bytes.ok_or_else(|| missing(rev))?;
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(Record::decode(rev, &bytes)?);
                }
            }
        }
        out.into_iter().zip(revs).map(|(r, rev)| r.ok_or_else(|| missing(*rev))).collect()
    }

    /// Visits every record with revision >= `from`, in revision order, pending overlay merged over the
    /// backend, until `visit` returns Ok(false).
    pub(crate) fn scan_merged(
        &self,
        from: RevisionKey,
        visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut pend = self.pending.records.range(from..).peekable();
        let mut stopped = false;
        self.backend.scan_records(from, &mut |rev, bytes| {
            while let Some(&(&pk, pv)) = pend.peek() {
                if pk > rev {
                    break;
                }
                pend.next();
                if pk == rev {
                    // The overlay overrides (or deletes) what the backend holds.
                    let Some(v) = pv else { return Ok(true) };
                    let go = visit(rev, v)?;
                    stopped = !go;
                    return Ok(go);
                }
                if let Some(v) = pv
                    && !visit(pk, v)?
                {
                    stopped = true;
                    return Ok(false);
                }
            }
            let go = visit(rev, bytes)?;
            stopped = !go;
            Ok(go)
        })?;
        if !stopped {
            for (pk, pv) in pend {
                if let Some(v) = pv
                    && !visit(*pk, v)?
                {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn missing(rev: RevisionKey) -> Error {
    Error::corrupt(format!("record {rev} is indexed but missing from storage"))
}
