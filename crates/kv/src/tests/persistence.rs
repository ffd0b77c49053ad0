//! Pending changes, commit, reopen over a shared MemBackend, corruption on open, hash_kv.

use meridian_types::EtcdError;

use super::util::*;
use crate::{Backend, Error, KvStore, MemBackend, RevisionKey};

fn write_some(s: &mut Store) {
    put(s, "a", "1");
    put(s, "b", "2");
    put(s, "a", "3");
    del(s, "b", "");
    apply_txn(s, txn(vec![], vec![op_put("c", "4"), op_put("d", "5")], vec![])).unwrap();
}

#[test]
fn uncommitted_changes_visible_to_reads() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    write_some(&mut s);
    assert_eq!(be.record_count(), 0, "nothing reaches the backend before commit");
    assert!(s.has_uncommitted());
    assert_eq!(value(&s, "a").as_deref(), Some("3"));
    assert_eq!(get_at(&s, "a", 2).unwrap().unwrap().value, b"1");
    assert_eq!(get_at(&s, "b", 4).unwrap().unwrap().value, b"2");
    assert_eq!(s.events_since(r(2), b"\0", b"\0", 0).unwrap().len(), 6);
}

#[test]
fn commit_writes_everything_in_one_backend_transaction() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    write_some(&mut s);
    s.commit(vec![("raft/applied".into(), b"7".to_vec())]).unwrap();
    assert_eq!(be.commit_count(), 1);
    assert_eq!(be.record_count(), 6);
    assert_eq!(be.meta("raft/applied").unwrap(), Some(b"7".to_vec()));
    assert!(!s.has_uncommitted());
    s.commit(vec![]).unwrap();
    assert_eq!(be.commit_count(), 1, "an empty commit does not touch the backend");
}

#[test]
fn caller_meta_cannot_overwrite_kv_meta() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    put(&mut s, "a", "1");
    s.commit(vec![("kv/current_revision".into(), 99i64.to_be_bytes().to_vec())]).unwrap();
    assert_eq!(KvStore::open(be).unwrap().current_revision().0, 2);
}

#[test]
fn failed_commit_keeps_changes_pending() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    write_some(&mut s);
    be.set_fail_commits(true);
    assert!(matches!(s.commit(vec![]), Err(Error::Backend(_))));
    assert_eq!(value(&s, "a").as_deref(), Some("3"));
    be.set_fail_commits(false);
    s.commit(vec![]).unwrap();
    assert_eq!(be.record_count(), 6);
}

#[test]
fn reopen_rebuilds_index_from_backend() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    write_some(&mut s);
    s.commit(vec![]).unwrap();
    let reopened = KvStore::open(be.clone()).unwrap();
    assert_eq!(reopened.current_revision(), s.current_revision());
    assert_eq!(reopened.index, s.index);
    for at in 1..=rev(&s) {
        let mut req = range_req("\0", "\0");
        req.revision = at;
        assert_eq!(reopened.range(&req).unwrap(), s.range(&req).unwrap(), "at {at}");
    }
    assert_eq!(reopened.events_since(r(1), b"\0", b"\0", 0).unwrap(), s.events_since(r(1), b"\0", b"\0", 0).unwrap());
    assert_eq!(reopened.hash_kv(r(0)).unwrap(), s.hash_kv(r(0)).unwrap());
}

#[test]
fn revision_survives_reopen_after_compacting_everything() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    put(&mut s, "a", "1");
    del(&mut s, "a", "");
    compact(&mut s, 3).unwrap();
    s.commit(vec![]).unwrap();
    assert_eq!(be.record_count(), 0);
    let reopened = KvStore::open(be).unwrap();
    assert_eq!((reopened.current_revision().0, reopened.compact_revision().0), (3, 3));
}

#[test]
fn open_rejects_corrupt_record() {
    let be = MemBackend::new();
    be.put_raw_record(RevisionKey::new(2, 0), vec![0, 0xff, 0x01]);
    assert!(matches!(KvStore::open(be), Err(Error::Corrupt(_))));
}

#[test]
fn hash_kv_is_equal_on_replicas_and_depends_on_revision() {
    let mut a = store();
    let mut b = store();
    write_some(&mut a);
    write_some(&mut b);
    b.commit(vec![]).unwrap();
    let ha = a.hash_kv(r(0)).unwrap();
    assert_eq!(ha, b.hash_kv(r(0)).unwrap(), "pending and committed states hash the same");
    assert_eq!(ha.2, r(6));
    assert_eq!(a.hash_kv(r(6)).unwrap(), ha);
    assert_ne!(a.hash_kv(r(5)).unwrap().0, ha.0);
    put(&mut a, "z", "1");
    assert_eq!(a.hash_kv(r(6)).unwrap(), ha, "later writes do not change the hash at 6");
}

#[test]
fn hash_kv_revision_bounds_follow_etcd() {
    let mut s = store();
    write_some(&mut s);
    assert_eq!(s.hash_kv(r(7)), Err(Error::Etcd(EtcdError::FutureRevision)));
    compact(&mut s, 4).unwrap();
    assert_eq!(s.hash_kv(r(4)), Err(Error::Etcd(EtcdError::Compacted)));
    let (_, compact_rev, hash_rev) = s.hash_kv(r(5)).unwrap();
    assert_eq!((compact_rev, hash_rev), (r(4), r(5)));
}

#[test]
fn staged_meta_is_visible_and_lands_with_the_data() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    put(&mut s, "a", "1");
    s.stage_meta(vec![("raft/applied".into(), b"1".to_vec()), ("kv/current_revision".into(), vec![9])]);
    put(&mut s, "b", "2");
    s.stage_meta(vec![("raft/applied".into(), b"2".to_vec())]);
    assert_eq!(s.meta("raft/applied").unwrap(), Some(b"2".to_vec()));
    assert_eq!(be.meta("raft/applied").unwrap(), None);
    assert_eq!((s.pending_len(), be.commit_count()), (2, 0));
    assert!(s.pending_bytes() > 2 * RevisionKey::LEN);

    be.set_fail_commits(true);
    assert!(s.commit(vec![]).is_err());
    assert_eq!(s.meta("raft/applied").unwrap(), Some(b"2".to_vec()), "a failed commit keeps staged meta");
    assert_eq!(s.pending_len(), 2);
    be.set_fail_commits(false);
    s.commit(vec![]).unwrap();
    assert_eq!((s.pending_len(), s.pending_bytes(), be.commit_count()), (0, 0, 1));
    assert_eq!(be.meta("raft/applied").unwrap(), Some(b"2".to_vec()));
    assert_eq!(KvStore::open(be).unwrap().current_revision().0, 3, "kv/ keys cannot be staged");
}

#[test]
fn partially_committed_state_reads_like_a_committed_one() {
    // `a` commits only now and then (as the state machine does), `b` after every command; reads at
    // every revision, watch history and hashes must not tell them apart.
    let mut a = store();
    let mut b = store();
    let steps: [fn(&mut Store); 5] = [
        write_some,
        |s| s.commit(vec![]).unwrap(),
        |s| {
            put(s, "a", "4");
            del(s, "c", "");
        },
        |s| {
            compact(s, 4).unwrap();
        },
        |s| {
            put(s, "e", "6");
            put(s, "a", "7");
        },
    ];
    for step in &steps {
        step(&mut a);
        step(&mut b);
        b.commit(vec![]).unwrap();
        for at in 0..=rev(&b) {
            let mut req = range_req("\0", "\0");
            req.revision = at;
            // Compacted revisions must fail alike, so compare whole results.
            assert_eq!(a.range(&req), b.range(&req), "range at {at}");
            assert_eq!(a.hash_kv(r(at)), b.hash_kv(r(at)), "hash at {at}");
            assert_eq!(a.events_since(r(at), b"\0", b"\0", 0), b.events_since(r(at), b"\0", b"\0", 0), "events {at}");
        }
    }
    assert!(a.has_uncommitted());
}
