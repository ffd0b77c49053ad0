//! Put and DeleteRange: revisions, versions, prev_kv, ignore_* flags, validation, events.

use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::mvccpb::event::EventType;
use meridian_types::EtcdError;

use super::util::*;
use crate::CommandResponse;

#[test]
fn empty_store_has_revision_one() {
    let s = store();
    assert_eq!(rev(&s), 1);
    assert_eq!(s.compact_revision().0, 0);
    assert_eq!(s.range(&range_req("a", "")).unwrap().header.unwrap().revision, 1);
}

#[test]
fn put_creates_key_at_next_revision_with_version_one() {
    let mut s = store();
    let a = put(&mut s, "a", "1");
    assert_eq!(a.revision.0, 2);
    let CommandResponse::Put(resp) = &a.response else { panic!() };
    assert_eq!(resp.header.as_ref().unwrap().revision, 2);
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
    assert_eq!(kv.value, b"1");
}

#[test]
fn put_increments_version_and_keeps_create_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "x");
    put(&mut s, "a", "2");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 4, 2));
}

#[test]
fn delete_resets_version_and_create_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    del(&mut s, "a", "");
    assert_eq!(get(&s, "a"), None);
    put(&mut s, "a", "3");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn delete_of_nothing_keeps_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let a = del(&mut s, "b", "");
    assert_eq!(a.revision.0, 2);
    assert!(a.events.is_empty());
    let CommandResponse::DeleteRange(resp) = &a.response else { panic!() };
    assert_eq!((resp.deleted, resp.header.as_ref().unwrap().revision), (0, 2));
    assert_eq!(rev(&s), 2);
}

#[test]
fn delete_range_deletes_all_keys_at_one_revision_in_key_order() {
    let mut s = store();
    for k in ["a", "b", "c", "d"] {
        put(&mut s, k, k);
    }
    let a = del(&mut s, "b", "d");
    assert_eq!(a.revision.0, 6);
    let CommandResponse::DeleteRange(resp) = &a.response else { panic!() };
    assert_eq!(resp.deleted, 2);
    assert_eq!(keys_of(&resp.prev_kvs), ["b", "c"]);
    let got: Vec<(i32, Vec<u8>, i64)> = a
        .events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (e.r#type, kv.key.clone(), kv.mod_revision)
        })
        .collect();
    let del = EventType::Delete as i32;
    assert_eq!(got, vec![(del, b"b".to_vec(), 6), (del, b"c".to_vec(), 6)]);
    assert_eq!(a.events[0].prev_kv.as_ref().unwrap().value, b"b");
    assert_eq!(keys_of(&s.range(&range_req("a", "\0")).unwrap().kvs), ["a", "d"]);
}

#[test]
fn delete_range_without_prev_kv_returns_none() {
    let mut s = store();
    put(&mut s, "a", "1");
    let mut d = del_req("a", "");
    d.prev_kv = false;
    let a = apply(&mut s, Cmd::DeleteRange(d)).unwrap();
    let CommandResponse::DeleteRange(resp) = &a.response else { panic!() };
    assert_eq!(resp.deleted, 1);
    assert!(resp.prev_kvs.is_empty());
}

#[test]
fn put_returns_prev_kv_only_when_asked() {
    let mut s = store();
    put(&mut s, "a", "1");
    let mut p = put_req("a", "2");
    let a = apply(&mut s, Cmd::Put(p.clone())).unwrap();
    let CommandResponse::Put(resp) = &a.response else { panic!() };
    assert_eq!(resp.prev_kv, None);
    p.prev_kv = true;
    p.value = b"3".to_vec();
    let a = apply(&mut s, Cmd::Put(p)).unwrap();
    let CommandResponse::Put(resp) = &a.response else { panic!() };
    assert_eq!(resp.prev_kv.as_ref().unwrap().value, b"2");
}

#[test]
fn put_event_carries_new_and_previous_value() {
    let mut s = store();
    let first = put(&mut s, "a", "1");
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].prev_kv, None);
    let second = put(&mut s, "a", "2");
    let e = &second.events[0];
    assert_eq!(e.r#type, EventType::Put as i32);
    assert_eq!(e.kv.as_ref().unwrap().value, b"2");
    assert_eq!(e.prev_kv.as_ref().unwrap().value, b"1");
}

#[test]
fn delete_event_has_key_and_delete_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let a = del(&mut s, "a", "");
    let kv = a.events[0].kv.as_ref().unwrap();
    assert_eq!((kv.key.as_slice(), kv.mod_revision, kv.version), (&b"a"[..], 3, 0));
}

#[test]
fn requests_with_empty_key_are_rejected() {
    let mut s = store();
    assert_eq!(etcd_err(apply(&mut s, Cmd::Put(put_req("", "v")))), EtcdError::EmptyKey);
    assert_eq!(etcd_err(apply(&mut s, Cmd::DeleteRange(del_req("", "\0")))), EtcdError::EmptyKey);
    assert_eq!(s.range(&RangeRequest::default()), Err(crate::Error::Etcd(EtcdError::EmptyKey)));
    assert_eq!(rev(&s), 1);
}

#[test]
fn put_ignore_flags_follow_etcd_rules() {
    // (request tweak, expected error when the key does not exist, expected error when it exists)
    type Tweak = fn(&mut PutRequest);
    let cases: Vec<(&str, Tweak, Option<EtcdError>, Option<EtcdError>)> = vec![
        (
            "ignore_value with value",
            |p| p.ignore_value = true,
            Some(EtcdError::ValueProvided),
            Some(EtcdError::ValueProvided),
        ),
        (
            "ignore_value, no value",
            |p| {
                p.ignore_value = true;
                p.value.clear()
            },
            Some(EtcdError::KeyNotFound),
            None,
        ),
        (
            "ignore_lease with lease",
            |p| {
                p.ignore_lease = true;
                p.lease = 5
            },
            Some(EtcdError::LeaseProvided),
            Some(EtcdError::LeaseProvided),
        ),
        ("ignore_lease, no lease", |p| p.ignore_lease = true, Some(EtcdError::KeyNotFound), None),
        ("unknown lease", |p| p.lease = 99, Some(EtcdError::LeaseNotFound), Some(EtcdError::LeaseNotFound)),
    ];
    for (name, tweak, missing, existing) in cases {
        let mut p = put_req("k", "new");
        tweak(&mut p);
        let mut s = store();
        assert_eq!(
            apply(&mut s, Cmd::Put(p.clone())).err().map(|e| match e {
                crate::Error::Etcd(e) => e,
                o => panic!("{o:?}"),
            }),
            missing,
            "{name} (missing key)"
        );
        let mut s = store();
        put(&mut s, "k", "old");
        assert_eq!(
            apply(&mut s, Cmd::Put(p)).err().map(|e| match e {
                crate::Error::Etcd(e) => e,
                o => panic!("{o:?}"),
            }),
            existing,
            "{name} (existing key)"
        );
    }
}

#[test]
fn put_ignore_value_keeps_value_and_ignore_lease_keeps_lease() {
    let mut s = store();
    let l = grant(&mut s, 7, 10).unwrap();
    put_lease(&mut s, "k", "v1", l);
    let mut p = put_req("k", "");
    p.ignore_value = true;
    p.lease = 0;
    apply(&mut s, Cmd::Put(p)).unwrap();
    let kv = get(&s, "k").unwrap();
    assert_eq!((kv.value.as_slice(), kv.lease, kv.version), (&b"v1"[..], 0, 2));

    put_lease(&mut s, "k", "v2", l);
    let mut p = put_req("k", "v3");
    p.ignore_lease = true;
    apply(&mut s, Cmd::Put(p)).unwrap();
    let kv = get(&s, "k").unwrap();
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"v3"[..], l));
}

#[test]
fn rejected_command_changes_nothing() {
    let mut s = store();
    put(&mut s, "a", "1");
    let before = s.snapshot().unwrap();
    let mut p = put_req("a", "2");
    p.lease = 42;
    assert_eq!(etcd_err(apply(&mut s, Cmd::Put(p))), EtcdError::LeaseNotFound);
    assert_eq!(s.snapshot().unwrap(), before);
    assert_eq!(value(&s, "a").as_deref(), Some("1"));
}

#[test]
fn empty_raft_command_is_rejected() {
    let mut s = store();
    let r = s.apply(&meridian_proto::meridianpb::RaftCommand { auth: None, cmd: None, ..Default::default() });
    assert!(matches!(r, Err(crate::Error::Etcd(EtcdError::Internal(_)))));
}
