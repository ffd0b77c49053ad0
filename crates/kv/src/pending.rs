//! The not-yet-committed changes of a `KvStore`, and the read paths that look through them to the
//! backend. Reads must see applied-but-uncommitted changes, so every record lookup or scan consults this
//! overlay first.

use std::collections::BTreeMap;

use crate::backend::{Backend, WriteBatch};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::revision::RevisionKey;
use crate::store::KvStore;

/// Changes applied since the last commit. `None` marks a deletion.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub records: BTreeMap<RevisionKey, Option<Vec<u8>>>,
    pub leases: BTreeMap<i64, Option<Vec<u8>>>,
    /// Revisions, compact revision or lease counter changed.
    pub meta_dirty: bool,
}

impl Pending {
    pub fn put_record(&mut self, rev: RevisionKey, bytes: Vec<u8>) {
        self.records.insert(rev, Some(bytes));
    }

    pub fn delete_record(&mut self, rev: RevisionKey) {
        self.records.insert(rev, None);
    }

    pub fn put_lease(&mut self, id: i64, bytes: Vec<u8>) {
        self.leases.insert(id, Some(bytes));
    }

    pub fn delete_lease(&mut self, id: i64) {
        self.leases.insert(id, None);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.leases.is_empty() && !self.meta_dirty
    }

    /// The batch persisting these changes plus `meta`. Built by copy so a failed commit loses nothing.
    pub fn to_batch(&self, meta: Vec<(String, Vec<u8>)>) -> WriteBatch {
        let mut batch = WriteBatch { put_meta: meta, ..Default::default() };
        for (rev, bytes) in &self.records {
            match bytes {
                Some(b) => batch.put_records.push((*rev, b.clone())),
                None => batch.delete_records.push(*rev),
            }
        }
        for (id, bytes) in &self.leases {
            match bytes {
                Some(b) => batch.put_leases.push((*id, b.clone())),
                None => batch.delete_leases.push(*id),
            }
        }
        batch
    }

    pub fn clear(&mut self) {
        *self = Pending::default();
    }
}

impl<B: Backend> KvStore<B> {
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
