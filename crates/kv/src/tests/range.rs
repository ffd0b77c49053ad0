//! Range: key selection, historical reads, count/limit/more, sort, filters, keys_only, count_only.

use meridian_proto::etcdserverpb::RangeRequest;
use meridian_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use meridian_types::EtcdError;

use super::util::*;
use crate::Error;

/// a@2 "3", b@3 "1", c@4 "2", then a@5 "4" (a: version 2, create 2, mod 5).
fn sample() -> Store {
    let mut s = store();
    put(&mut s, "a", "3");
    put(&mut s, "b", "1");
    put(&mut s, "c", "2");
    put(&mut s, "a", "4");
    s
}

fn keys(s: &Store, req: &RangeRequest) -> Vec<String> {
    keys_of(&s.range(req).unwrap().kvs)
}

#[test]
fn range_end_forms_follow_etcd() {
    let s = sample();
    let cases: &[(&str, &str, &[&str])] = &[
        ("a", "", &["a"]),
        ("x", "", &[]),
        ("b", "\0", &["b", "c"]),
        ("\0", "\0", &["a", "b", "c"]),
        ("a", "c", &["a", "b"]),
        ("c", "a", &[]),
    ];
    for (k, end, want) in cases {
        assert_eq!(keys(&s, &range_req(k, end)), *want, "key={k:?} end={end:?}");
    }
}

#[test]
fn range_limit_sets_more_and_count_ignores_limit() {
    let s = sample();
    for (limit, want_keys, want_more) in [
        (0, vec!["a", "b", "c"], false),
        (1, vec!["a"], true),
        (2, vec!["a", "b"], true),
        (3, vec!["a", "b", "c"], false),
        (10, vec!["a", "b", "c"], false),
    ] {
        let mut req = range_req("a", "\0");
        req.limit = limit;
        let resp = s.range(&req).unwrap();
        assert_eq!(keys_of(&resp.kvs), want_keys, "limit {limit}");
        assert_eq!((resp.more, resp.count), (want_more, 3), "limit {limit}");
    }
}

#[test]
fn range_count_only_returns_no_kvs() {
    let s = sample();
    let mut req = range_req("a", "\0");
    req.count_only = true;
    req.limit = 1;
    let resp = s.range(&req).unwrap();
    assert!(resp.kvs.is_empty());
    assert_eq!((resp.count, resp.more), (3, false));
}

#[test]
fn range_keys_only_drops_values() {
    let s = sample();
    let mut req = range_req("a", "\0");
    req.keys_only = true;
    let resp = s.range(&req).unwrap();
    assert!(resp.kvs.iter().all(|kv| kv.value.is_empty()));
    assert_eq!(resp.kvs[0].version, 2);
}

#[test]
fn range_at_past_revision_reads_history_with_current_header() {
    let mut s = sample();
    del(&mut s, "b", "");
    let cases: &[(i64, &[(&str, &str)])] = &[
        (1, &[]),
        (2, &[("a", "3")]),
        (4, &[("a", "3"), ("b", "1"), ("c", "2")]),
        (5, &[("a", "4"), ("b", "1"), ("c", "2")]),
        (6, &[("a", "4"), ("c", "2")]),
        (0, &[("a", "4"), ("c", "2")]),
    ];
    for (at, want) in cases {
        let mut req = range_req("a", "\0");
        req.revision = *at;
        let resp = s.range(&req).unwrap();
        let got: Vec<(String, String)> = resp
            .kvs
            .iter()
            .map(|kv| (String::from_utf8(kv.key.clone()).unwrap(), String::from_utf8(kv.value.clone()).unwrap()))
            .collect();
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(got, want, "at {at}");
        assert_eq!(resp.header.unwrap().revision, 6);
    }
    let a_at_4 = get_at(&s, "a", 4).unwrap().unwrap();
    assert_eq!((a_at_4.version, a_at_4.mod_revision), (1, 2));
}

#[test]
fn range_at_future_revision_is_rejected() {
    let s = sample();
    assert_eq!(get_at(&s, "a", 6), Err(Error::Etcd(EtcdError::FutureRevision)));
    assert!(get_at(&s, "a", 5).is_ok());
}

#[test]
fn range_sort_options_follow_etcd() {
    let s = sample();
    use SortOrder::*;
    use SortTarget::*;
    // a: ver 2 create 2 mod 5 "4"; b: ver 1 create 3 mod 3 "1"; c: ver 1 create 4 mod 4 "2"
    let cases: &[(SortOrder, SortTarget, &[&str])] = &[
        (None, Key, &["a", "b", "c"]),
        (Ascend, Key, &["a", "b", "c"]),
        (Descend, Key, &["c", "b", "a"]),
        (None, Value, &["b", "c", "a"]),
        (Ascend, Value, &["b", "c", "a"]),
        (Descend, Value, &["a", "c", "b"]),
        (Ascend, Version, &["b", "c", "a"]),
        (Descend, Version, &["a", "b", "c"]),
        (Ascend, Create, &["a", "b", "c"]),
        (Descend, Create, &["c", "b", "a"]),
        (Ascend, Mod, &["b", "c", "a"]),
        (Descend, Mod, &["a", "c", "b"]),
    ];
    for (order, target, want) in cases {
        let mut req = range_req("a", "\0");
        req.sort_order = *order as i32;
        req.sort_target = *target as i32;
        assert_eq!(keys(&s, &req), *want, "{order:?} {target:?}");
    }
}

#[test]
fn range_sort_with_limit_sorts_everything_before_limiting() {
    let s = sample();
    let mut req = range_req("a", "\0");
    req.sort_order = SortOrder::Descend as i32;
    req.sort_target = SortTarget::Mod as i32;
    req.limit = 1;
    let resp = s.range(&req).unwrap();
    assert_eq!(keys_of(&resp.kvs), ["a"]);
    assert!(resp.more);
    req.sort_order = SortOrder::Descend as i32;
    req.sort_target = SortTarget::Key as i32;
    assert_eq!(keys(&s, &req), ["c"]);
}

#[test]
fn range_sort_target_with_order_none_and_limit_sorts_only_fetched_keys() {
    // etcd quirk: with sort_order NONE the limit is applied while fetching (limit+1 keys in key order),
    // and only those are then sorted ascending by the target.
    let s = sample();
    let mut req = range_req("a", "\0");
    req.sort_target = SortTarget::Value as i32;
    req.limit = 1;
    let resp = s.range(&req).unwrap();
    assert_eq!(keys_of(&resp.kvs), ["b"]); // fetched a("4"), b("1"); sorted: b, a
    assert!(resp.more);
}

#[test]
fn range_revision_filters_apply_before_limit_and_not_to_count() {
    let s = sample();
    type Tweak = fn(&mut RangeRequest);
    let cases: Vec<(&str, Tweak, &[&str])> = vec![
        ("min_mod 4", |r| r.min_mod_revision = 4, &["a", "c"]),
        ("max_mod 4", |r| r.max_mod_revision = 4, &["b", "c"]),
        ("min_create 3", |r| r.min_create_revision = 3, &["b", "c"]),
        ("max_create 3", |r| r.max_create_revision = 3, &["a", "b"]),
        (
            "mod 3..=4",
            |r| {
                r.min_mod_revision = 3;
                r.max_mod_revision = 4
            },
            &["b", "c"],
        ),
        (
            "min_mod 4 limit 1",
            |r| {
                r.min_mod_revision = 4;
                r.limit = 1
            },
            &["a"],
        ),
        (
            "max_create 3 limit 1 from b",
            |r| {
                r.key = b"b".to_vec();
                r.max_create_revision = 3;
                r.limit = 1
            },
            &["b"],
        ),
    ];
    for (name, tweak, want) in cases {
        let mut req = range_req("a", "\0");
        tweak(&mut req);
        let resp = s.range(&req).unwrap();
        assert_eq!(keys_of(&resp.kvs), *want, "{name}");
        assert_eq!(resp.count, if req.key == b"b" { 2 } else { 3 }, "{name}");
    }
    let mut req = range_req("a", "\0");
    req.min_mod_revision = 4;
    req.limit = 1;
    assert!(s.range(&req).unwrap().more);
    req.limit = 2;
    assert!(!s.range(&req).unwrap().more);
}

#[test]
fn negative_limit_means_unlimited() {
    let s = sample();
    let mut req = range_req("a", "\0");
    req.limit = -5;
    assert_eq!(keys(&s, &req), ["a", "b", "c"]);
}
