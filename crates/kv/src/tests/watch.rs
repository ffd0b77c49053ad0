//! events_since: ranges of keys and revisions, prev_kv, max_events at revision boundaries.

use meridian_proto::mvccpb::event::EventType;

use super::util::*;

fn summary(evs: &[meridian_proto::mvccpb::Event]) -> Vec<(String, i64, bool)> {
    evs.iter()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (String::from_utf8(kv.key.clone()).unwrap(), kv.mod_revision, e.r#type == EventType::Delete as i32)
        })
        .collect()
}

/// a@2, b@3, a@4, txn{c, d}@5, delete a@6
fn sample() -> Store {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    put(&mut s, "a", "2");
    apply_txn(&mut s, txn(vec![], vec![op_put("c", "1"), op_put("d", "1")], vec![])).unwrap();
    del(&mut s, "a", "");
    s
}

#[test]
fn events_since_filters_keys_and_revisions() {
    let s = sample();
    let ev = |start, k: &str, end: &str| summary(&s.events_since(r(start), k.as_bytes(), end.as_bytes(), 0).unwrap());
    let e = |k: &str, rev, del| (k.to_string(), rev, del);
    assert_eq!(ev(1, "a", ""), vec![e("a", 2, false), e("a", 4, false), e("a", 6, true)]);
    assert_eq!(ev(3, "a", ""), vec![e("a", 4, false), e("a", 6, true)]);
    assert_eq!(ev(3, "b", "d"), vec![e("b", 3, false), e("c", 5, false)]);
    assert_eq!(ev(5, "\0", "\0"), vec![e("c", 5, false), e("d", 5, false), e("a", 6, true)]);
    assert_eq!(ev(7, "\0", "\0"), vec![]);
    assert_eq!(ev(100, "\0", "\0"), vec![]);
}

#[test]
fn events_since_fills_prev_kv() {
    let s = sample();
    let evs = s.events_since(r(1), b"a", b"", 0).unwrap();
    let prevs: Vec<Option<Vec<u8>>> = evs.iter().map(|e| e.prev_kv.as_ref().map(|p| p.value.clone())).collect();
    assert_eq!(prevs, vec![None, Some(b"1".to_vec()), Some(b"2".to_vec())]);
    assert_eq!(evs[2].prev_kv.as_ref().unwrap().version, 2);
}

#[test]
fn events_since_max_events_stops_at_revision_boundary() {
    let s = sample();
    let at = |max| {
        summary(&s.events_since(r(1), b"\0", b"\0", max).unwrap()).iter().map(|(_, rev, _)| *rev).collect::<Vec<_>>()
    };
    assert_eq!(at(1), vec![2]);
    assert_eq!(at(3), vec![2, 3, 4]);
    // The txn revision holds two events; it is never split.
    assert_eq!(at(4), vec![2, 3, 4, 5, 5]);
    assert_eq!(at(5), vec![2, 3, 4, 5, 5]);
    assert_eq!(at(0), vec![2, 3, 4, 5, 5, 6]);
    let s2 = sample();
    assert_eq!(
        summary(&s2.events_since(r(5), b"\0", b"\0", 1).unwrap()).len(),
        2,
        "one revision larger than max is returned whole"
    );
}

#[test]
fn events_since_match_applied_events() {
    let mut s = store();
    let mut applied = Vec::new();
    applied.extend(put(&mut s, "x", "1").events);
    applied.extend(apply_txn(&mut s, txn(vec![], vec![op_put("y", "1"), op_put("x", "2")], vec![])).unwrap().0.events);
    applied.extend(del(&mut s, "a", "z").events);
    assert_eq!(s.events_since(r(2), b"\0", b"\0", 0).unwrap(), applied);
}
