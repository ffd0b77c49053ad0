//! Compaction: which history survives, what reads at and below the compact revision do, persistence.

use meridian_types::EtcdError;

use super::util::*;
use crate::{Backend, Error, KvStore, MemBackend};

/// a@2 "1", a@3 "2", b@4 "x", b deleted@5, a@6 "3", c@7 "y"
fn sample() -> Store {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    put(&mut s, "b", "x");
    del(&mut s, "b", "");
    put(&mut s, "a", "3");
    put(&mut s, "c", "y");
    s
}

#[test]
fn compaction_keeps_latest_record_at_compact_revision() {
    let mut s = sample();
    compact(&mut s, 4).unwrap();
    assert_eq!(s.compact_revision().0, 4);
    let a = get_at(&s, "a", 4).unwrap().unwrap();
    assert_eq!((a.value.as_slice(), a.mod_revision, a.version), (&b"2"[..], 3, 2));
    assert_eq!(get_at(&s, "b", 4).unwrap().unwrap().value, b"x");
    assert_eq!(get_at(&s, "b", 5).unwrap(), None);
    assert_eq!(value(&s, "a").as_deref(), Some("3"));
}

#[test]
fn range_at_compacted_revision_is_rejected() {
    let mut s = sample();
    compact(&mut s, 4).unwrap();
    assert_eq!(get_at(&s, "a", 3), Err(Error::Etcd(EtcdError::Compacted)));
    assert!(get_at(&s, "a", 4).is_ok());
    assert!(get_at(&s, "a", 0).is_ok());
}

#[test]
fn compaction_revision_bounds_follow_etcd() {
    let mut s = sample();
    assert_eq!(etcd_err(compact(&mut s, 8)), EtcdError::FutureRevision);
    compact(&mut s, 3).unwrap();
    assert_eq!(etcd_err(compact(&mut s, 3)), EtcdError::Compacted);
    assert_eq!(etcd_err(compact(&mut s, 2)), EtcdError::Compacted);
    // An old revision wins over a future one, as in etcd.
    assert_eq!(etcd_err(compact(&mut s, 1)), EtcdError::Compacted);
    compact(&mut s, 7).unwrap();
    assert_eq!(rev(&s), 7, "compaction does not bump the revision");
}

#[test]
fn compaction_deletes_dropped_records_from_backend() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    put(&mut s, "b", "x");
    del(&mut s, "b", "");
    s.commit(vec![]).unwrap();
    assert_eq!(be.record_count(), 4);
    compact(&mut s, 5).unwrap();
    s.commit(vec![]).unwrap();
    // Only a@3 is left: a@2 is superseded, b's generation ended with a tombstone at or before 5.
    assert_eq!(be.record_count(), 1);
    assert!(!s.index.contains_key(&b"b"[..]), "fully compacted key leaves the index");
    let reopened = KvStore::open(be).unwrap();
    assert_eq!(reopened.compact_revision().0, 5);
    assert_eq!(get_at(&reopened, "a", 5).unwrap().unwrap().value, b"2");
    assert_eq!(get_at(&reopened, "a", 4), Err(Error::Etcd(EtcdError::Compacted)));
}

#[test]
fn compaction_of_uncommitted_history_never_reaches_backend() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    compact(&mut s, 3).unwrap();
    s.commit(vec![]).unwrap();
    assert_eq!(be.record_count(), 1);
    assert!(be.get_records(&[crate::RevisionKey::new(2, 0)]).unwrap()[0].is_none());
}

#[test]
fn compaction_at_current_revision_keeps_current_state() {
    let mut s = sample();
    compact(&mut s, 7).unwrap();
    let all = s.range(&range_req("\0", "\0")).unwrap();
    assert_eq!(keys_of(&all.kvs), ["a", "c"]);
    assert_eq!(all.kvs[0].version, 3);
    put(&mut s, "b", "again");
    assert_eq!(get(&s, "b").unwrap().version, 1);
}

#[test]
fn watch_from_compacted_revision_is_rejected() {
    let mut s = sample();
    compact(&mut s, 4).unwrap();
    for start in [1, 3] {
        assert_eq!(s.events_since(r(start), b"\0", b"\0", 0), Err(Error::Etcd(EtcdError::Compacted)), "start {start}");
    }
    // etcd accepts a watch starting exactly at the compact revision; only records retained there replay.
    let at_compact = s.events_since(r(4), b"\0", b"\0", 0).unwrap();
    assert!(at_compact.iter().all(|e| e.kv.as_ref().unwrap().mod_revision >= 4));
    let evs = s.events_since(r(5), b"\0", b"\0", 0).unwrap();
    assert_eq!(evs.len(), 3);
    // prev_kv of the delete at 5 is the record kept by compaction.
    assert_eq!(evs[0].prev_kv.as_ref().unwrap().value, b"x");
    assert_eq!(evs[1].prev_kv.as_ref().unwrap().value, b"2");
    // start 0 = everything retained.
    assert_eq!(s.events_since(r(0), b"\0", b"\0", 0).unwrap(), evs);
}
