//! `MemBackend`: the in-memory `Backend` for unit tests and simulation. Its state sits behind an `Arc`,
//! so a clone shares it and a test can drop a `KvStore` and reopen the same "disk". The maps are
//! copy-on-write (`Arc::make_mut`), so a `MemView` is a cheap clone of three `Arc`s and a commit copies a
//! map only while a view of it is still alive.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Backend, BackendView, WriteBatch};
use crate::error::{Error, Result};
use crate::revision::RevisionKey;

/// Records visited per lock acquisition in `scan_records`, so a long scan neither copies the whole
/// store nor holds the lock while the visitor runs.
const SCAN_CHUNK: usize = 256;

/// The stored contents; each map is shared with the views opened on it.
#[derive(Debug, Default, Clone)]
struct MemData {
    records: Arc<BTreeMap<RevisionKey, Vec<u8>>>,
    leases: Arc<BTreeMap<i64, Vec<u8>>>,
    meta: Arc<BTreeMap<String, Vec<u8>>>,
}

#[derive(Debug, Default)]
struct MemState {
    data: MemData,
    fail_commits: bool,
    commits: u64,
}

impl MemState {
    fn apply(&mut self, batch: &WriteBatch) {
        if !batch.delete_records.is_empty() || !batch.put_records.is_empty() {
            let records = Arc::make_mut(&mut self.data.records);
            for rev in &batch.delete_records {
                records.remove(rev);
            }
            for (rev, bytes) in &batch.put_records {
                records.insert(*rev, bytes.clone());
            }
        }
        if !batch.delete_leases.is_empty() || !batch.put_leases.is_empty() {
            let leases = Arc::make_mut(&mut self.data.leases);
            for id in &batch.delete_leases {
                leases.remove(id);
            }
            for (id, bytes) in &batch.put_leases {
                leases.insert(*id, bytes.clone());
            }
        }
        if !batch.put_meta.is_empty() {
            let meta = Arc::make_mut(&mut self.data.meta);
            for (key, bytes) in &batch.put_meta {
                meta.insert(key.clone(), bytes.clone());
            }
        }
        self.commits += 1;
    }
}

/// A frozen view of a [`MemBackend`]: the maps as they were when it was opened.
#[derive(Debug, Clone)]
pub struct MemView {
    data: MemData,
}

impl BackendView for MemView {
    fn scan_records(&self, from: RevisionKey, visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()> {
        for (rev, bytes) in self.data.records.range(from..) {
            if !visit(*rev, bytes)? {
                break;
            }
        }
        Ok(())
    }

    fn leases(&self) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(self.data.leases.iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.data.meta.get(key).cloned())
    }
}

/// In-memory backend: BTreeMaps behind a mutex. `Clone` shares state, so a test can "reopen".
#[derive(Debug, Clone, Default)]
pub struct MemBackend {
    state: Arc<Mutex<MemState>>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic elsewhere while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test double, so recover rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make every following `commit`/`replace_all` fail (to test failure handling).
    pub fn set_fail_commits(&self, fail: bool) {
        self.lock().fail_commits = fail;
    }

    /// Number of successful commits so far.
    pub fn commit_count(&self) -> u64 {
        self.lock().commits
    }

    /// Number of stored MVCC records.
    pub fn record_count(&self) -> usize {
        self.lock().data.records.len()
    }

    /// Write raw bytes at a revision, bypassing `KvStore` (to test corruption handling).
    pub fn put_raw_record(&self, rev: RevisionKey, bytes: Vec<u8>) {
        Arc::make_mut(&mut self.lock().data.records).insert(rev, bytes);
    }
}

impl Backend for MemBackend {
    type View = MemView;

    fn get_records(&self, revs: &[RevisionKey]) -> Result<Vec<Option<Vec<u8>>>> {
        let st = self.lock();
        Ok(revs.iter().map(|r| st.data.records.get(r).cloned()).collect())
    }

    fn scan_records(&self, from: RevisionKey, visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()> {
        let mut lower = Bound::Included(from);
        loop {
            let chunk: Vec<(RevisionKey, Vec<u8>)> = {
                let st = self.lock();
                st.data
                    .records
                    .range((lower, Bound::Unbounded))
                    .take(SCAN_CHUNK)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect()
            };
            let Some(&(last, _)) = chunk.last() else {
                return Ok(());
            };
            for (rev, bytes) in &chunk {
                if !visit(*rev, bytes)? {
                    return Ok(());
                }
            }
            lower = Bound::Excluded(last);
        }
    }

    fn leases(&self) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(self.lock().data.leases.iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().data.meta.get(key).cloned())
    }

    fn commit(&self, batch: &WriteBatch) -> Result<()> {
        let mut st = self.lock();
        if st.fail_commits {
            return Err(Error::Backend("injected commit failure".into()));
        }
        st.apply(batch);
        Ok(())
    }

    fn replace_all(&self, batch: WriteBatch) -> Result<()> {
        let mut st = self.lock();
        if st.fail_commits {
            return Err(Error::Backend("injected commit failure".into()));
        }
        // Fresh maps rather than clearing shared ones: open views keep the old contents.
        st.data = MemData::default();
        st.apply(&batch);
        Ok(())
    }

    fn view(&self) -> Result<MemView> {
        Ok(MemView { data: self.lock().data.clone() })
    }

    fn size_bytes(&self) -> u64 {
        let st = self.lock();
        let records: usize = st.data.records.values().map(|v| v.len() + RevisionKey::LEN).sum();
        let leases: usize = st.data.leases.values().map(|v| v.len() + 8).sum();
        let meta: usize = st.data.meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        (records + leases + meta) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_with_records(n: i64) -> WriteBatch {
        WriteBatch {
            put_records: (1..=n).map(|i| (RevisionKey::new(i, 0), vec![i as u8])).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn clone_shares_state() {
        let a = MemBackend::new();
        let b = a.clone();
        a.commit(&batch_with_records(3)).unwrap();
        assert_eq!(b.record_count(), 3);
    }

    #[test]
    fn scan_visits_in_revision_order_across_chunks_and_stops_on_false() {
        let be = MemBackend::new();
        be.commit(&batch_with_records(1000)).unwrap();
        let mut seen = Vec::new();
        be.scan_records(RevisionKey::new(10, 0), &mut |rev, _| {
            seen.push(rev.main);
            Ok(rev.main < 700)
        })
        .unwrap();
        assert_eq!(seen, (10..=700).collect::<Vec<_>>());
    }

    #[test]
    fn replace_all_drops_everything_else() {
        let be = MemBackend::new();
        let mut b = batch_with_records(3);
        b.put_meta.push(("other".into(), vec![1]));
        b.put_leases.push((7, vec![1]));
        be.commit(&b).unwrap();
        be.replace_all(batch_with_records(1)).unwrap();
        assert_eq!(be.record_count(), 1);
        assert_eq!(be.meta("other").unwrap(), None);
        assert!(be.leases().unwrap().is_empty());
    }

    #[test]
    fn view_is_frozen_and_does_not_block_commits() {
        let be = MemBackend::new();
        be.commit(&batch_with_records(3)).unwrap();
        let view = be.view().unwrap();
        let mut more = batch_with_records(5);
        more.delete_records.push(RevisionKey::new(1, 0));
        more.put_meta.push(("m".into(), vec![1]));
        be.commit(&more).unwrap();
        be.replace_all(batch_with_records(1)).unwrap();
        let mut seen = Vec::new();
        view.scan_records(RevisionKey::MIN, &mut |rev, _| {
            seen.push(rev.main);
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(view.meta("m").unwrap(), None);
        assert_eq!(be.record_count(), 1);
    }

    #[test]
    fn injected_failure_changes_nothing() {
        let be = MemBackend::new();
        be.set_fail_commits(true);
        assert!(matches!(be.commit(&batch_with_records(2)), Err(Error::Backend(_))));
        assert_eq!(be.record_count(), 0);
    }
}
