//! Snapshots: round trip, corruption detection, atomic replacement of the backend.

use super::util::*;
use crate::{Backend, BackendView, Error, KvStore, MemBackend, snapshot_revision, write_snapshot_of_view};

/// A view's dump in memory.
fn dump<V: BackendView>(view: &V) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_snapshot_of_view(view, &mut out)?;
    Ok(out)
}

fn busy_store() -> Store {
    let mut s = store();
    grant(&mut s, 0, 30).unwrap();
    put_lease(&mut s, "a", "1", 1);
    put(&mut s, "b", "2");
    put(&mut s, "a", "3");
    del(&mut s, "b", "");
    put(&mut s, "c", "4");
    compact(&mut s, 3).unwrap();
    s
}

#[test]
fn snapshot_restore_roundtrip() {
    let mut src = busy_store();
    let snap = src.snapshot().unwrap();
    assert_eq!(snapshot_revision(&snap).unwrap(), src.current_revision());
    let target = MemBackend::new();
    let mut restored = KvStore::restore(target.clone(), &snap).unwrap();
    assert_eq!(restored.current_revision(), src.current_revision());
    assert_eq!(restored.compact_revision(), src.compact_revision());
    assert_eq!(restored.index, src.index);
    assert_eq!(restored.leases(), src.leases());
    assert_eq!(restored.hash_kv(r(0)).unwrap(), src.hash_kv(r(0)).unwrap());
    assert_eq!(restored.snapshot().unwrap(), snap);
    // Both continue identically, lease counter included.
    assert_eq!(grant(&mut restored, 0, 5), grant(&mut src, 0, 5));
    put(&mut restored, "d", "5");
    put(&mut src, "d", "5");
    assert_eq!(restored.hash_kv(r(0)).unwrap(), src.hash_kv(r(0)).unwrap());
}

#[test]
fn snapshot_committed_and_uncommitted_states_are_identical() {
    let mut s = busy_store();
    let before = s.snapshot().unwrap();
    s.commit(vec![]).unwrap();
    assert_eq!(s.snapshot().unwrap(), before);
}

#[test]
fn restore_replaces_all_backend_contents_including_foreign_meta() {
    let snap = busy_store().snapshot().unwrap();
    let target = MemBackend::new();
    let mut old = KvStore::open(target.clone()).unwrap();
    for i in 0..20 {
        put(&mut old, &format!("old{i}"), "x");
    }
    old.commit(vec![("raft/applied".into(), b"old".to_vec())]).unwrap();
    let restored =
        KvStore::restore_with_meta(target.clone(), &snap, vec![("raft/snapshot".into(), b"s".to_vec())]).unwrap();
    assert_eq!(value(&restored, "old0"), None);
    assert_eq!(target.meta("raft/applied").unwrap(), None);
    assert_eq!(target.meta("raft/snapshot").unwrap(), Some(b"s".to_vec()));
    assert_eq!(keys_of(&restored.range(&range_req("\0", "\0")).unwrap().kvs), ["a", "c"]);
}

#[test]
fn corrupt_snapshot_is_an_error() {
    let snap = busy_store().snapshot().unwrap();
    let target = MemBackend::new();
    let mut keep = KvStore::open(target.clone()).unwrap();
    put(&mut keep, "precious", "1");
    keep.commit(vec![]).unwrap();

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("short".into(), snap[..3].to_vec()),
        ("truncated".into(), snap[..snap.len() - 1].to_vec()),
        ("extended".into(), [snap.clone(), vec![0]].concat()),
    ];
    let mut bad_version = snap.clone();
    bad_version[4] = 9;
    cases.push(("version".into(), bad_version));
    // Flipping any single byte is caught (by the checksum or the header checks).
    for i in (0..snap.len()).step_by(7) {
        let mut b = snap.clone();
        b[i] ^= 0x40;
        cases.push((format!("flip {i}"), b));
    }
    for (name, bytes) in cases {
        let res = KvStore::restore(target.clone(), &bytes);
        assert!(matches!(res, Err(Error::Corrupt(_))), "{name}: {:?}", res.map(|_| ()));
        assert!(snapshot_revision(&bytes).is_err(), "{name}");
    }
    assert_eq!(
        value(&KvStore::open(target).unwrap(), "precious").as_deref(),
        Some("1"),
        "a bad snapshot changes nothing"
    );
}

#[test]
fn snapshot_with_valid_checksum_but_bad_record_is_rejected() {
    // Re-seal a tampered body so only the structural checks can catch it.
    let snap = busy_store().snapshot().unwrap();
    let body_len = snap.len() - 4;
    let mut body = snap[..body_len].to_vec();
    // First record's stored bytes start after header (4+1+24+8) + rev key (16) + len (4).
    let first_record = 4 + 1 + 24 + 8 + 16 + 4;
    body[first_record] = 0x80; // unknown record flag
    let crc = crate::hash::crc32c(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    assert!(matches!(KvStore::restore(MemBackend::new(), &body), Err(Error::Corrupt(_))));
}

#[test]
fn a_dump_of_a_view_equals_snapshot_of_the_store() {
    let mut s = busy_store();
    let live = s.snapshot().unwrap();
    let view = s.commit_and_view().unwrap();
    assert!(!s.has_uncommitted(), "commit_and_view commits first");
    assert_eq!(dump(&view).unwrap(), live);
    // An empty store dumps the same both ways too.
    let mut empty = store();
    assert_eq!(dump(&empty.commit_and_view().unwrap()).unwrap(), empty.snapshot().unwrap());
}

/// Accepts `room` bytes, then fails like a full disk.
struct FullAfter {
    room: usize,
    got: Vec<u8>,
}

impl std::io::Write for FullAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.got.len() + buf.len() > self.room {
            return Err(std::io::Error::other("disk full"));
        }
        self.got.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn streamed_dump_reports_its_size_and_a_failing_writer_is_an_error() {
    let mut s = busy_store();
    let live = s.snapshot().unwrap();
    let view = s.commit_and_view().unwrap();
    let mut out = FullAfter { room: usize::MAX, got: Vec::new() };
    assert_eq!(write_snapshot_of_view(&view, &mut out).unwrap(), live.len() as u64);
    assert_eq!(out.got, live);
    let mut full = FullAfter { room: live.len() / 2, got: Vec::new() };
    let err = write_snapshot_of_view(&view, &mut full).unwrap_err();
    assert!(matches!(&err, Error::Backend(m) if m.contains("disk full")), "{err:?}");
}

#[test]
fn view_taken_before_later_writes_does_not_contain_them() {
    let mut s = busy_store();
    let before = s.snapshot().unwrap();
    s.stage_meta(vec![("raft/applied".into(), b"7".to_vec())]);
    let view = s.commit_and_view().unwrap();
    // Applies and commits proceed while the view is open.
    let lease = grant(&mut s, 0, 60).unwrap();
    put_lease(&mut s, "later", "x", lease);
    del(&mut s, "a", "");
    compact(&mut s, 6).unwrap();
    s.commit(vec![("raft/applied".into(), b"9".to_vec())]).unwrap();
    put(&mut s, "uncommitted", "y");

    let snap = dump(&view).unwrap();
    assert_eq!(snap, before);
    assert_eq!(view.meta("raft/applied").unwrap(), Some(b"7".to_vec()), "staged meta is part of the view");
    let restored = KvStore::restore(MemBackend::new(), &snap).unwrap();
    assert_eq!(value(&restored, "later"), None);
    assert_eq!(value(&restored, "uncommitted"), None);
    assert_eq!(value(&restored, "a").as_deref(), Some("3"));
    assert!(restored.lease(meridian_types::LeaseId(lease)).is_none());
    assert_eq!(s.meta("raft/applied").unwrap(), Some(b"9".to_vec()));
}
