//! `MemBackend`: the in-memory `Backend` for unit tests and simulation. Its state sits behind an `Arc`,
//! so a clone shares it and a test can drop a `KvStore` and reopen the same "disk".

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Backend, WriteBatch};
use crate::error::{Error, Result};
use crate::revision::RevisionKey;

/// Records visited per lock acquisition in `scan_records`, so a long scan neither copies the whole
/// store nor holds the lock while the visitor runs.
const SCAN_CHUNK: usize = 256;

#[derive(Debug, Default)]
struct MemState {
    records: BTreeMap<RevisionKey, Vec<u8>>,
    leases: BTreeMap<i64, Vec<u8>>,
    meta: BTreeMap<String, Vec<u8>>,
    fail_commits: bool,
    commits: u64,
}

impl MemState {
    fn apply(&mut self, batch: WriteBatch) {
        for rev in batch.delete_records {
            self.records.remove(&rev);
        }
        for (rev, bytes) in batch.put_records {
            self.records.insert(rev, bytes);
        }
        for id in batch.delete_leases {
            self.leases.remove(&id);
        }
        for (id, bytes) in batch.put_leases {
            self.leases.insert(id, bytes);
        }
        for (key, bytes) in batch.put_meta {
            self.meta.insert(key, bytes);
        }
        self.commits += 1;
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
        self.lock().records.len()
    }

    /// Write raw bytes at a revision, bypassing `KvStore` (to test corruption handling).
    pub fn put_raw_record(&self, rev: RevisionKey, bytes: Vec<u8>) {
        self.lock().records.insert(rev, bytes);
    }
}

impl Backend for MemBackend {
    fn get_records(&self, revs: &[RevisionKey]) -> Result<Vec<Option<Vec<u8>>>> {
        let st = self.lock();
        Ok(revs.iter().map(|r| st.records.get(r).cloned()).collect())
    }

    fn scan_records(&self, from: RevisionKey, visit: &mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()> {
        let mut lower = Bound::Included(from);
        loop {
            let chunk: Vec<(RevisionKey, Vec<u8>)> = {
                let st = self.lock();
                st.records.range((lower, Bound::Unbounded)).take(SCAN_CHUNK).map(|(k, v)| (*k, v.clone())).collect()
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
        Ok(self.lock().leases.iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
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
        st.records.clear();
        st.leases.clear();
        st.meta.clear();
        st.apply(batch);
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        let st = self.lock();
        let records: usize = st.records.values().map(|v| v.len() + RevisionKey::LEN).sum();
        let leases: usize = st.leases.values().map(|v| v.len() + 8).sum();
        let meta: usize = st.meta.iter().map(|(k, v)| k.len() + v.len()).sum();
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
        a.commit(batch_with_records(3)).unwrap();
        assert_eq!(b.record_count(), 3);
    }

    #[test]
    fn scan_visits_in_revision_order_across_chunks_and_stops_on_false() {
        let be = MemBackend::new();
        be.commit(batch_with_records(1000)).unwrap();
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
        be.commit(b).unwrap();
        be.replace_all(batch_with_records(1)).unwrap();
        assert_eq!(be.record_count(), 1);
        assert_eq!(be.meta("other").unwrap(), None);
        assert!(be.leases().unwrap().is_empty());
    }

    #[test]
    fn injected_failure_changes_nothing() {
        let be = MemBackend::new();
        be.set_fail_commits(true);
        assert!(matches!(be.commit(batch_with_records(2)), Err(Error::Backend(_))));
        assert_eq!(be.record_count(), 0);
    }
}
