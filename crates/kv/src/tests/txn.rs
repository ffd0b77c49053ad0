//! Txn: compare semantics, branch execution, shared revision, own-write visibility, validation.

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::response_op::Response;
use meridian_proto::etcdserverpb::{Compare, RequestOp};
use meridian_proto::mvccpb::event::EventType;
use meridian_types::EtcdError;

use super::util::*;

fn holds(s: &mut Store, c: Compare) -> bool {
    apply_txn(s, txn(vec![c], vec![], vec![])).unwrap().1.succeeded
}

#[test]
fn txn_compare_semantics_table() {
    let mut s = store();
    let l = grant(&mut s, 5, 10).unwrap();
    put(&mut s, "k", "m"); // create 2
    put_lease(&mut s, "k", "m", l); // k: create 2, mod 3, version 2, value "m", lease 5
    use CompareResult::*;
    use CompareTarget as T;
    use TargetUnion as U;
    let cases: Vec<(T, U, [bool; 4])> = vec![
        // operand, then expected for [Equal, Greater, Less, NotEqual]
        (T::Version, U::Version(2), [true, false, false, false]),
        (T::Version, U::Version(1), [false, true, false, true]),
        (T::Version, U::Version(3), [false, false, true, true]),
        (T::Create, U::CreateRevision(2), [true, false, false, false]),
        (T::Create, U::CreateRevision(1), [false, true, false, true]),
        (T::Mod, U::ModRevision(3), [true, false, false, false]),
        (T::Mod, U::ModRevision(4), [false, false, true, true]),
        (T::Value, U::Value(b"m".to_vec()), [true, false, false, false]),
        (T::Value, U::Value(b"a".to_vec()), [false, true, false, true]),
        (T::Value, U::Value(b"z".to_vec()), [false, false, true, true]),
        (T::Value, U::Value(b"mm".to_vec()), [false, false, true, true]),
        (T::Lease, U::Lease(5), [true, false, false, false]),
        (T::Lease, U::Lease(0), [false, true, false, true]),
        // operand of the wrong kind compares as zero
        (T::Version, U::ModRevision(2), [false, true, false, true]),
    ];
    for (target, operand, want) in cases {
        for (result, want) in [Equal, Greater, Less, NotEqual].into_iter().zip(want) {
            let c = cmp("k", target, result, operand.clone());
            assert_eq!(holds(&mut s, c), want, "{target:?} {result:?} {operand:?}");
        }
    }
    assert_eq!(rev(&s), 3, "compares never write");
}

#[test]
fn txn_compare_missing_key_has_version_zero() {
    let mut s = store();
    use CompareResult::*;
    for (target, operand) in [
        (CompareTarget::Version, TargetUnion::Version(0)),
        (CompareTarget::Create, TargetUnion::CreateRevision(0)),
        (CompareTarget::Mod, TargetUnion::ModRevision(0)),
        (CompareTarget::Lease, TargetUnion::Lease(0)),
    ] {
        assert!(holds(&mut s, cmp("nope", target, Equal, operand.clone())), "{target:?}");
        assert!(!holds(&mut s, cmp("nope", target, Greater, operand)), "{target:?}");
    }
}

#[test]
fn txn_compare_value_on_missing_key_always_fails() {
    let mut s = store();
    for result in [CompareResult::Equal, CompareResult::NotEqual, CompareResult::Less, CompareResult::Greater] {
        let c = cmp("nope", CompareTarget::Value, result, TargetUnion::Value(vec![]));
        assert!(!holds(&mut s, c), "{result:?}");
    }
}

#[test]
fn txn_compare_with_range_end_requires_every_key() {
    let mut s = store();
    put(&mut s, "a1", "x");
    put(&mut s, "a2", "x");
    put(&mut s, "a2", "y");
    let mut c = cmp_version("a", CompareResult::Equal, 1);
    c.range_end = b"b".to_vec();
    assert!(!holds(&mut s, c.clone()));
    c.result = CompareResult::Greater as i32;
    c.target_union = Some(TargetUnion::Version(0));
    assert!(holds(&mut s, c.clone()));
    // An empty range compares as one missing key.
    c.key = b"x".to_vec();
    c.range_end = b"y".to_vec();
    assert!(!holds(&mut s, c.clone()));
    c.result = CompareResult::Equal as i32;
    assert!(holds(&mut s, c));
}

#[test]
fn txn_runs_failure_branch_when_a_compare_fails() {
    let mut s = store();
    let t = txn(
        vec![cmp_version("a", CompareResult::Equal, 0), cmp_version("b", CompareResult::Equal, 1)],
        vec![op_put("ok", "1")],
        vec![op_put("ko", "1"), op_range("ko", "")],
    );
    let (a, resp) = apply_txn(&mut s, t).unwrap();
    assert!(!resp.succeeded);
    assert_eq!(value(&s, "ko").as_deref(), Some("1"));
    assert_eq!(value(&s, "ok"), None);
    assert_eq!(resp.header.unwrap().revision, 2);
    assert_eq!(a.revision.0, 2);
}

#[test]
fn watch_events_of_one_txn_share_revision_in_order() {
    let mut s = store();
    put(&mut s, "d", "old");
    let t = txn(vec![], vec![op_put("b", "1"), op_del("d", ""), op_put("a", "2")], vec![]);
    let (a, resp) = apply_txn(&mut s, t).unwrap();
    assert_eq!(resp.header.unwrap().revision, 3);
    let got: Vec<(i32, String, i64)> = a
        .events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (e.r#type, String::from_utf8(kv.key.clone()).unwrap(), kv.mod_revision)
        })
        .collect();
    let (p, d) = (EventType::Put as i32, EventType::Delete as i32);
    assert_eq!(got, vec![(p, "b".into(), 3), (d, "d".into(), 3), (p, "a".into(), 3)]);
    // Stored sub revisions follow the op order.
    let hist = s.events_since(r(3), b"\0", b"\0", 0).unwrap();
    assert_eq!(hist, a.events);
}

#[test]
fn txn_reads_see_its_own_earlier_writes() {
    let mut s = store();
    put(&mut s, "a", "old");
    put(&mut s, "b", "x");
    let t = txn(
        vec![],
        vec![op_range("a", "c"), op_put("a", "new"), op_range("a", "c"), op_del("b", ""), op_range("a", "c")],
        vec![],
    );
    let (_, resp) = apply_txn(&mut s, t).unwrap();
    let ranges: Vec<(Vec<String>, i64)> = resp
        .responses
        .iter()
        .filter_map(|r| match &r.response {
            Some(Response::ResponseRange(rr)) => Some((
                rr.kvs.iter().map(|kv| String::from_utf8(kv.value.clone()).unwrap()).collect(),
                rr.header.as_ref().unwrap().revision,
            )),
            _ => None,
        })
        .collect();
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(ranges, vec![(v(&["old", "x"]), 3), (v(&["new", "x"]), 4), (v(&["new"]), 4)]);
}

#[test]
fn txn_with_only_reads_keeps_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let (a, resp) = apply_txn(&mut s, txn(vec![], vec![op_range("a", ""), op_del("zzz", "")], vec![])).unwrap();
    assert!(a.events.is_empty());
    assert_eq!((rev(&s), resp.header.unwrap().revision), (2, 2));
}

#[test]
fn txn_rejects_same_key_written_twice() {
    let nested = |success: Vec<RequestOp>, failure: Vec<RequestOp>| op_txn(txn(vec![], success, failure));
    let cases: Vec<(&str, Vec<RequestOp>, bool)> = vec![
        ("put twice", vec![op_put("a", "1"), op_put("a", "2")], true),
        ("put inside deleted range", vec![op_del("a", "c"), op_put("b", "1")], true),
        ("put before delete of same key", vec![op_put("b", "1"), op_del("b", "")], true),
        ("put inside from-key delete", vec![op_del("a", "\0"), op_put("z", "1")], true),
        ("put outside deleted range", vec![op_del("a", "c"), op_put("c", "1")], false),
        ("overlapping deletes", vec![op_del("a", "c"), op_del("b", "d")], false),
        ("different keys", vec![op_put("a", "1"), op_put("b", "1")], false),
        ("nested put of same key", vec![op_put("a", "1"), nested(vec![op_put("a", "2")], vec![])], true),
        ("nested delete over outer put", vec![op_put("a", "1"), nested(vec![op_del("a", "")], vec![])], true),
        ("outer delete over nested put", vec![op_del("a", "b"), nested(vec![op_put("a", "2")], vec![])], true),
        ("same key in both nested branches", vec![nested(vec![op_put("a", "1")], vec![op_put("a", "2")])], false),
        (
            "two nested txns put same key",
            vec![nested(vec![op_put("a", "1")], vec![]), nested(vec![], vec![op_put("a", "2")])],
            true,
        ),
        (
            "nested delete then sibling nested put",
            vec![nested(vec![op_del("a", "")], vec![]), nested(vec![op_put("a", "1")], vec![])],
            true,
        ),
    ];
    for (name, ops, dup) in cases {
        for in_success in [true, false] {
            let mut s = store();
            let t = if in_success { txn(vec![], ops.clone(), vec![]) } else { txn(vec![], vec![], ops.clone()) };
            let res = apply_txn(&mut s, t);
            if dup {
                // Checked on both branches, whichever would run.
                assert!(matches!(res, Err(crate::Error::Etcd(EtcdError::DuplicateKey))), "{name}: {res:?}");
                assert_eq!(rev(&s), 1, "{name}");
            } else {
                assert!(res.is_ok(), "{name}: {res:?}");
            }
        }
    }
}

#[test]
fn txn_rejects_too_many_ops() {
    let many = |n: usize| (0..n).map(|i| op_put(&format!("k{i}"), "v")).collect::<Vec<_>>();
    let mut s = store();
    assert!(apply_txn(&mut s, txn(vec![], many(crate::MAX_TXN_OPS), vec![])).is_ok());
    for t in [
        txn(vec![], many(129), vec![]),
        txn(vec![], vec![], many(129)),
        txn((0..129).map(|_| cmp_version("a", CompareResult::Equal, 0)).collect(), vec![], vec![]),
        txn(vec![], vec![op_txn(txn(vec![], many(129), vec![]))], vec![]),
    ] {
        assert_eq!(
            etcd_err(apply(&mut s, meridian_proto::meridianpb::raft_command::Cmd::Txn(t))),
            EtcdError::TooManyOps
        );
    }
}

#[test]
fn txn_rejects_too_deep_nesting_without_overflowing() {
    let mut t = txn(vec![], vec![op_put("a", "1")], vec![]);
    for _ in 0..1_000 {
        t = txn(vec![], vec![op_txn(t)], vec![]);
    }
    let mut s = store();
    let res = apply_txn(&mut s, t);
    assert!(matches!(res, Err(crate::Error::Etcd(EtcdError::TooManyOps))));
}

#[test]
fn txn_validates_ops_of_both_branches() {
    let cases: Vec<(RequestOp, EtcdError)> = vec![
        (op_put("", "v"), EtcdError::EmptyKey),
        (op_del("", ""), EtcdError::EmptyKey),
        (op_range("", ""), EtcdError::EmptyKey),
        (RequestOp { request: None }, EtcdError::KeyNotFound),
    ];
    for (op, want) in cases {
        let mut s = store();
        // The failure branch never runs here, yet a bad op in it rejects the txn.
        let t = txn(vec![], vec![op_put("ok", "1")], vec![op]);
        assert_eq!(etcd_err(apply(&mut s, meridian_proto::meridianpb::raft_command::Cmd::Txn(t))), want);
        assert_eq!(rev(&s), 1);
    }
}

#[test]
fn txn_unknown_lease_rejects_only_when_on_executed_path() {
    let mut leased = op_put("a", "1");
    if let Some(meridian_proto::etcdserverpb::request_op::Request::RequestPut(p)) = &mut leased.request {
        p.lease = 77;
    }
    let mut s = store();
    let t = txn(vec![], vec![op_put("b", "1"), leased.clone()], vec![]);
    assert_eq!(
        etcd_err(apply(&mut s, meridian_proto::meridianpb::raft_command::Cmd::Txn(t))),
        EtcdError::LeaseNotFound
    );
    assert_eq!((rev(&s), value(&s, "b")), (1, None));
    let t = txn(vec![], vec![op_put("b", "1")], vec![leased]);
    assert!(apply_txn(&mut s, t).unwrap().1.succeeded);
}

#[test]
fn txn_range_at_future_revision_rejects_whole_txn() {
    let mut s = store();
    let mut rr = range_req("a", "");
    rr.revision = 2; // would only exist after this txn's write
    let t = txn(
        vec![],
        vec![
            op_put("a", "1"),
            RequestOp { request: Some(meridian_proto::etcdserverpb::request_op::Request::RequestRange(rr)) },
        ],
        vec![],
    );
    assert_eq!(
        etcd_err(apply(&mut s, meridian_proto::meridianpb::raft_command::Cmd::Txn(t))),
        EtcdError::FutureRevision
    );
    assert_eq!(rev(&s), 1);
}

#[test]
fn txn_nested_compares_see_state_before_txn() {
    let mut s = store();
    // The outer txn creates "a"; the nested compare "a exists" is evaluated before that write (etcd).
    let inner = txn(
        vec![cmp_version("a", CompareResult::Greater, 0)],
        vec![op_put("inner", "saw-a")],
        vec![op_put("inner", "no-a")],
    );
    let t = txn(vec![], vec![op_put("a", "1"), op_txn(inner)], vec![]);
    let (a, resp) = apply_txn(&mut s, t).unwrap();
    assert_eq!(value(&s, "inner").as_deref(), Some("no-a"));
    let Some(Response::ResponseTxn(n)) = &resp.responses[1].response else { panic!() };
    assert!(!n.succeeded);
    assert_eq!(n.header.as_ref().map(|h| h.revision), Some(0), "etcd leaves nested headers empty");
    assert_eq!(a.events.len(), 2);
    assert!(a.events.iter().all(|e| e.kv.as_ref().unwrap().mod_revision == 2));
}

#[test]
fn txn_put_then_sibling_nested_delete_of_same_key() {
    // Allowed by etcd's interval check (puts are not checked against later sibling deletes).
    let mut s = store();
    let t = txn(
        vec![],
        vec![op_txn(txn(vec![], vec![op_put("a", "1")], vec![])), op_txn(txn(vec![], vec![op_del("a", "")], vec![]))],
        vec![],
    );
    let (a, _) = apply_txn(&mut s, t).unwrap();
    assert_eq!(a.events.len(), 2);
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get_at(&s, "a", 2).unwrap(), None);
}

#[test]
fn the_pre_raft_check_is_etcds_check_txn_request() {
    let many = |n: usize| (0..n).map(|i| op_put(&format!("k{i}"), "v")).collect::<Vec<_>>();
    let check = crate::check_txn_request;
    assert_eq!(check(&txn(vec![], many(crate::MAX_TXN_OPS), many(crate::MAX_TXN_OPS))), Ok(()));
    // Every list counts, compares included.
    let compares = (0..=crate::MAX_TXN_OPS).map(|_| cmp_version("a", CompareResult::Equal, 0)).collect();
    assert_eq!(check(&txn(compares, vec![], vec![])), Err(EtcdError::TooManyOps));
    assert_eq!(check(&txn(vec![], vec![], many(crate::MAX_TXN_OPS + 1))), Err(EtcdError::TooManyOps));
    // A compare without a key, and an op without a key inside a nested txn.
    assert_eq!(check(&txn(vec![cmp_version("", CompareResult::Equal, 0)], vec![], vec![])), Err(EtcdError::EmptyKey));
    let nested = txn(vec![], vec![], vec![op_put("", "v")]);
    assert_eq!(check(&txn(vec![], vec![op_txn(nested)], vec![])), Err(EtcdError::EmptyKey));
}
