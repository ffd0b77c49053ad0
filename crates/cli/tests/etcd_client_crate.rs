//! The `etcd-client` crate (0.21) against `meridian server`.
//!
//! Every scenario is an absolute-assertion script run against both the subject and a real etcd
//! 3.4 (concurrently), so the assertions themselves are validated against etcd's behaviour.

mod common;

use common::{Kind, assert_grpc, connect, on_both, status_of};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions,
    PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use std::time::Duration;
use tonic::Code;

fn keys(kvs: &[etcd_client::KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8_lossy(kv.key()).into_owned()).collect()
}

fn rev(h: Option<&etcd_client::ResponseHeader>) -> i64 {
    h.map(|h| h.revision()).unwrap_or(-1)
}

async fn kv_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    let r = c.put("a", "1", None).await.unwrap();
    assert_eq!(rev(r.header()), 2, "[{k}] first put on a fresh store is revision 2");
    let r = c.put("a", "2", Some(PutOptions::new().with_prev_key())).await.unwrap();
    let prev = r.prev_key().expect("prev kv");
    assert_eq!((prev.value(), prev.mod_revision()), (&b"1"[..], 2), "[{k}] prev kv");
    for (i, key) in ["p/1", "p/2", "p/3", "p/4", "q"].iter().enumerate() {
        c.put(*key, format!("v{}", 9 - i), None).await.unwrap(); // revs 4..=8
    }
    let r = c.get("p/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(keys(r.kvs()), ["p/1", "p/2", "p/3", "p/4"], "[{k}] prefix");
    assert_eq!((r.count(), r.more()), (4, false), "[{k}] prefix count");
    let r = c.get("p/", Some(GetOptions::new().with_prefix().with_limit(2))).await.unwrap();
    assert_eq!((r.kvs().len(), r.count(), r.more()), (2, 4, true), "[{k}] limit");
    let r = c.get("p/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
    assert_eq!((r.kvs().len(), r.count()), (0, 4), "[{k}] count only");
    let r = c.get("p/", Some(GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
    assert!(r.kvs().iter().all(|kv| kv.value().is_empty()), "[{k}] keys only");
    assert_eq!(r.kvs().len(), 4, "[{k}] keys only count");
    let r = c
        .get("p/", Some(GetOptions::new().with_prefix().with_sort(SortTarget::Value, SortOrder::Ascend)))
        .await
        .unwrap();
    assert_eq!(keys(r.kvs()), ["p/4", "p/3", "p/2", "p/1"], "[{k}] sort by value");
    let r = c
        .get("p/", Some(GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Descend)))
        .await
        .unwrap();
    assert_eq!(keys(r.kvs()), ["p/4", "p/3", "p/2", "p/1"], "[{k}] sort by create desc");
    let r = c.get("p/3", Some(GetOptions::new().with_from_key())).await.unwrap();
    assert_eq!(keys(r.kvs()), ["p/3", "p/4", "q"], "[{k}] from key");
    let r = c.get("p/2", Some(GetOptions::new().with_range("p/4"))).await.unwrap();
    assert_eq!(keys(r.kvs()), ["p/2", "p/3"], "[{k}] explicit range");
    let r = c
        .get("p/", Some(GetOptions::new().with_prefix().with_min_mod_revision(5).with_max_mod_revision(6)))
        .await
        .unwrap();
    assert_eq!(keys(r.kvs()), ["p/2", "p/3"], "[{k}] mod revision filters");
    let r = c.get("a", Some(GetOptions::new().with_revision(2))).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"1", "[{k}] historical read");
    let r = c.get("a", Some(GetOptions::new().with_serializable())).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"2", "[{k}] serializable read");
    assert_grpc(
        kind,
        c.get("a", Some(GetOptions::new().with_revision(1000))).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
        "future revision",
    );
    assert_grpc(
        kind,
        c.put("", "x", None).await,
        Code::InvalidArgument,
        "etcdserver: key is not provided",
        "empty key",
    );
    assert_grpc(
        kind,
        c.put("nope", "", Some(PutOptions::new().with_ignore_value())).await,
        Code::InvalidArgument,
        "etcdserver: key not found",
        "ignore_value on a missing key",
    );
    c.put("a", "", Some(PutOptions::new().with_ignore_value())).await.unwrap();
    let r = c.get("a", None).await.unwrap();
    assert_eq!((r.kvs()[0].value(), r.kvs()[0].version()), (&b"2"[..], 3), "[{k}] ignore_value");
    let r = c.delete("p/", Some(DeleteOptions::new().with_prefix().with_prev_key())).await.unwrap();
    assert_eq!(r.deleted(), 4, "[{k}] delete prefix");
    assert_eq!(keys(r.prev_kvs()), ["p/1", "p/2", "p/3", "p/4"], "[{k}] delete prev kvs");
    let r = c.delete("p/", Some(DeleteOptions::new().with_prefix())).await.unwrap();
    assert_eq!(r.deleted(), 0, "[{k}] delete nothing");
    let r = c.get("", Some(GetOptions::new().with_all_keys())).await.unwrap();
    assert_eq!(keys(r.kvs()), ["a", "q"], "[{k}] all keys");
    assert_eq!(rev(r.header()), 10, "[{k}] final revision");
}

#[tokio::test]
async fn kv_operations_with_options() {
    on_both(|kind, ep, _| Box::pin(kv_scenario(kind, ep))).await;
}

async fn txn_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    c.put("t1", "x", None).await.unwrap(); // rev 2
    let txn = Txn::new()
        .when([
            Compare::value("t1", CompareOp::Equal, "x"),
            Compare::version("t1", CompareOp::Equal, 1),
            Compare::mod_revision("t1", CompareOp::Less, 3),
            Compare::create_revision("t2", CompareOp::Equal, 0),
        ])
        .and_then([
            TxnOp::put("t2", "yes", None),
            TxnOp::get("t", Some(GetOptions::new().with_prefix())),
            TxnOp::txn(Txn::new().and_then([TxnOp::put("t3", "nested", None)])),
        ])
        .or_else([TxnOp::put("t2", "no", None)]);
    let r = c.txn(txn).await.unwrap();
    assert!(r.succeeded(), "[{k}] all compares hold");
    assert_eq!(rev(r.header()), 3, "[{k}] txn is one revision");
    let ops = r.op_responses();
    assert_eq!(ops.len(), 3, "[{k}] three op responses");
    match &ops[1] {
        TxnOpResponse::Get(g) => assert_eq!(keys(g.kvs()), ["t1", "t2"], "[{k}] txn sees own put"),
        other => panic!("[{k}] expected a range response, got {other:?}"),
    }
    assert!(matches!(ops[2], TxnOpResponse::Txn(_)), "[{k}] nested txn response");
    let r = c.get("t3", None).await.unwrap();
    assert_eq!((r.kvs()[0].value(), r.kvs()[0].mod_revision()), (&b"nested"[..], 3), "[{k}] nested put");

    let r = c
        .txn(
            Txn::new()
                .when([Compare::value("t1", CompareOp::NotEqual, "x")])
                .and_then([TxnOp::put("t2", "yes2", None)])
                .or_else([TxnOp::delete("t3", None), TxnOp::get("t2", None)]),
        )
        .await
        .unwrap();
    assert!(!r.succeeded(), "[{k}] compare fails");
    assert_eq!(rev(r.header()), 4, "[{k}] else branch wrote");
    match &r.op_responses()[1] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"yes", "[{k}] else get"),
        other => panic!("[{k}] expected a range response, got {other:?}"),
    }
    assert_grpc(
        kind,
        c.txn(Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)])).await,
        Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
        "duplicate key in txn",
    );
    let r = c.get("d", None).await.unwrap();
    assert_eq!((r.kvs().len(), rev(r.header())), (0, 4), "[{k}] rejected txn applied nothing");
}

#[tokio::test]
async fn txn_compare_then_else() {
    on_both(|kind, ep, _| Box::pin(txn_scenario(kind, ep))).await;
}

async fn watch_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    c.put("w/1", "a", None).await.unwrap(); // rev 2
    c.put("w/1", "b", None).await.unwrap(); // rev 3
    c.delete("w/1", None).await.unwrap(); // rev 4
    c.put("w/2", "c", None).await.unwrap(); // rev 5
    c.put("x", "1", None).await.unwrap(); // rev 6

    let mut ws =
        c.watch("w/", Some(WatchOptions::new().with_prefix().with_start_revision(3).with_prev_key())).await.unwrap();
    let mut events = Vec::new();
    let mut created = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 4 {
        let msg = tokio::time::timeout_at(deadline, ws.message())
            .await
            .unwrap_or_else(|_| panic!("[{k}] timed out waiting for watch events; got {events:?}"))
            .unwrap()
            .expect("watch stream ended");
        created |= msg.created();
        assert!(!msg.canceled(), "[{k}] watch canceled: {}", msg.cancel_reason());
        for e in msg.events() {
            let kv = e.kv().unwrap();
            events.push((
                e.event_type(),
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.mod_revision(),
                e.prev_kv().map(|p| String::from_utf8_lossy(p.value()).into_owned()),
            ));
            if events.len() == 3 {
                // Live event after the replayed history.
                c.put("w/3", "d", None).await.unwrap(); // rev 7
            }
        }
    }
    assert!(created, "[{k}] a created response came first");
    assert_eq!(
        events,
        vec![
            (EventType::Put, "w/1".into(), 3, Some("a".into())),
            (EventType::Delete, "w/1".into(), 4, Some("b".into())),
            (EventType::Put, "w/2".into(), 5, None),
            (EventType::Put, "w/3".into(), 7, None),
        ],
        "[{k}] watch from revision 3 with prev_kv"
    );

    // Compacted start revision: the watch is canceled with the compact revision.
    c.compact(5, None).await.unwrap();
    let mut ws = c.watch("w/", Some(WatchOptions::new().with_prefix().with_start_revision(2))).await.unwrap();
    let mut canceled = None;
    for _ in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.message())
            .await
            .unwrap_or_else(|_| panic!("[{k}] timed out waiting for the cancel"))
            .unwrap();
        match msg {
            Some(m) if m.canceled() => {
                // etcd 3.4 leaves cancel_reason empty here; clients derive ErrCompacted from
                // compact_revision, so only that is asserted.
                canceled = Some(m.compact_revision());
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert_eq!(canceled, Some(5), "[{k}] watching a compacted revision");
}

#[tokio::test]
async fn watch_start_revision_prev_kv_and_compacted() {
    on_both(|kind, ep, _| Box::pin(watch_scenario(kind, ep))).await;
}

async fn lease_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    let g = c.lease_grant(30, None).await.unwrap();
    assert_eq!(g.ttl(), 30, "[{k}] granted ttl");
    let id = g.id();
    assert!(id > 0, "[{k}] lease id");
    c.put("l/1", "v", Some(PutOptions::new().with_lease(id))).await.unwrap(); // rev 2
    c.put("l/2", "v", Some(PutOptions::new().with_lease(id))).await.unwrap(); // rev 3
    let r = c.get("l/1", None).await.unwrap();
    assert_eq!(r.kvs()[0].lease(), id, "[{k}] key carries the lease");

    let (mut keeper, mut stream) = c.lease_keep_alive(id).await.unwrap();
    for _ in 0..2 {
        keeper.keep_alive().await.unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("[{k}] keep-alive response timed out"))
            .unwrap()
            .expect("keep-alive stream ended");
        assert_eq!((resp.id(), resp.ttl()), (id, 30), "[{k}] keep-alive response");
    }

    let t = c.lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys())).await.unwrap();
    let mut ks: Vec<&[u8]> = t.keys().iter().map(Vec::as_slice).collect();
    ks.sort();
    assert_eq!(ks, [&b"l/1"[..], &b"l/2"[..]], "[{k}] time_to_live keys");
    assert_eq!(t.granted_ttl(), 30, "[{k}] granted ttl");
    assert!((25..=30).contains(&t.ttl()), "[{k}] remaining ttl {}", t.ttl());

    let custom = 0x1234_5678;
    let g = c.lease_grant(60, Some(LeaseGrantOptions::new().with_id(custom))).await.unwrap();
    assert_eq!(g.id(), custom, "[{k}] client-chosen lease id");
    let dup = c.lease_grant(60, Some(LeaseGrantOptions::new().with_id(custom))).await;
    assert_grpc(kind, dup, Code::FailedPrecondition, "etcdserver: lease already exists", "duplicate lease id");

    let mut listed: Vec<i64> = c.leases().await.unwrap().leases().iter().map(|l| l.id()).collect();
    listed.sort();
    let mut want = vec![id, custom];
    want.sort();
    assert_eq!(listed, want, "[{k}] lease list");

    c.lease_revoke(id).await.unwrap(); // rev 4
    let r = c.get("l/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!((r.kvs().len(), rev(r.header())), (0, 4), "[{k}] revoke deletes keys in one revision");
    assert_grpc(
        kind,
        c.lease_revoke(id).await,
        Code::NotFound,
        "etcdserver: requested lease not found",
        "revoke twice",
    );
    let t = c.lease_time_to_live(id, None).await.unwrap();
    assert_eq!(t.ttl(), -1, "[{k}] time_to_live of a revoked lease");
    assert_grpc(
        kind,
        c.put("z", "v", Some(PutOptions::new().with_lease(999))).await,
        Code::NotFound,
        "etcdserver: requested lease not found",
        "put with unknown lease",
    );
    assert_grpc(
        kind,
        c.lease_grant(10_000_000_000, None).await,
        Code::OutOfRange,
        "etcdserver: too large lease TTL",
        "too large TTL",
    );

    // Expiry: a short lease; its key vanishes and a watcher sees the DELETE.
    let g = c.lease_grant(2, None).await.unwrap();
    let put = c.put("exp", "v", Some(PutOptions::new().with_lease(g.id()))).await.unwrap(); // rev 5
    let put_rev = rev(put.header());
    let mut ws = c.watch("exp", Some(WatchOptions::new().with_start_revision(put_rev + 1))).await.unwrap();
    let start = std::time::Instant::now();
    let mut deleted_at = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while deleted_at.is_none() {
        let msg = tokio::time::timeout_at(deadline, ws.message())
            .await
            .unwrap_or_else(|_| panic!("[{k}] lease never expired (20 s)"))
            .unwrap()
            .expect("watch ended");
        for e in msg.events() {
            if e.event_type() == EventType::Delete {
                deleted_at = Some(e.kv().unwrap().mod_revision());
            }
        }
    }
    assert!(start.elapsed() >= Duration::from_millis(1000), "[{k}] expired too early");
    assert_eq!(deleted_at, Some(put_rev + 1), "[{k}] expiry delete revision");
    let r = c.get("exp", None).await.unwrap();
    assert!(r.kvs().is_empty(), "[{k}] expired key is gone");
}

#[tokio::test]
async fn lease_grant_keepalive_ttl_revoke_expiry() {
    on_both(|kind, ep, _| Box::pin(lease_scenario(kind, ep))).await;
}

async fn compaction_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    for i in 0..5 {
        c.put("c", format!("{i}"), None).await.unwrap(); // revs 2..=6
    }
    let r = c.compact(4, None).await.unwrap();
    assert_eq!(rev(r.header()), 6, "[{k}] compaction does not bump the revision");
    assert_grpc(
        kind,
        c.get("c", Some(GetOptions::new().with_revision(3))).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
        "read below the compaction",
    );
    let r = c.get("c", Some(GetOptions::new().with_revision(4))).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"2", "[{k}] read at the compaction revision");
    assert_grpc(
        kind,
        c.compact(4, None).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
        "compact twice",
    );
    assert_grpc(
        kind,
        c.compact(7, None).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
        "compact the future",
    );
    c.compact(6, Some(etcd_client::CompactionOptions::new().with_physical())).await.unwrap();
    let r = c.get("c", None).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"4", "[{k}] latest survives compaction");
}

#[tokio::test]
async fn compaction_and_compacted_read_error() {
    on_both(|kind, ep, _| Box::pin(compaction_scenario(kind, ep))).await;
}

async fn maintenance_scenario(kind: Kind, ep: String, peer: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    c.put("m", "1", None).await.unwrap();
    let s = c.status().await.unwrap();
    let parts: Vec<&str> = s.version().split('.').collect();
    assert!(
        parts.len() == 3 && parts[0] == "3" && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "[{k}] version looks like 3.x.y: {:?}",
        s.version()
    );
    let member_id = s.header().map(|h| h.member_id()).unwrap_or(0);
    assert!(member_id != 0, "[{k}] member id set");
    assert_eq!(s.leader(), member_id, "[{k}] single node is its own leader");
    assert!(s.raft_index() > 0 && s.raft_term() > 0, "[{k}] raft index/term");
    assert!(s.db_size() > 0, "[{k}] db size");
    assert_eq!(s.header().map(|h| h.revision()), Some(2), "[{k}] status revision");

    let m = c.member_list().await.unwrap();
    assert_eq!(m.members().len(), 1, "[{k}] one member");
    let me = &m.members()[0];
    assert_eq!(me.id(), member_id, "[{k}] member id matches status");
    assert_eq!(me.name(), common::MEMBER_NAME, "[{k}] member name");
    assert_eq!(me.client_urls(), std::slice::from_ref(&ep), "[{k}] client urls");
    assert_eq!(me.peer_urls(), [peer], "[{k}] peer urls");
    assert!(!me.is_learner(), "[{k}] not a learner");

    let mut snap = c.snapshot().await.unwrap();
    let mut total = 0usize;
    let mut last_remaining = None;
    for _ in 0..100_000 {
        match snap.message().await.unwrap() {
            Some(chunk) => {
                total += chunk.blob().len();
                last_remaining = Some(chunk.remaining_bytes());
            }
            None => break,
        }
    }
    assert!(total > 0, "[{k}] snapshot has data");
    assert_eq!(last_remaining, Some(0), "[{k}] snapshot stream ends with remaining 0");
}

#[tokio::test]
async fn maintenance_status_member_list_snapshot() {
    on_both(|kind, ep, peer| Box::pin(maintenance_scenario(kind, ep, peer))).await;
}

async fn too_large_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c: Client = connect(&ep).await;
    let big = vec![b'x'; 1_600_000];
    assert_grpc(
        kind,
        c.put("big", big, None).await,
        Code::InvalidArgument,
        "etcdserver: request is too large",
        "1.6 MB value",
    );
    // Over the gRPC receive limit (the request limit plus 512 KiB): grpc-go's refusal, before etcd sees it.
    let huge = c.put("huge", vec![b'z'; 2_200_000], None).await;
    let (code, message) = huge.as_ref().err().and_then(status_of).unwrap_or_else(|| panic!("[{k}] {huge:?}"));
    assert_eq!(code, Code::ResourceExhausted, "[{k}] {message}");
    assert!(
        message.starts_with("grpc: received message larger than max (") && message.ends_with(" vs. 2097152)"),
        "[{k}] {message}"
    );
    let fits = vec![b'y'; 1_572_000];
    c.put("big", fits, None).await.unwrap();
    let r = c.get("big", None).await.unwrap();
    assert_eq!(r.kvs()[0].value().len(), 1_572_000, "[{k}] large value round-trips");
    let r = c.get("big", Some(GetOptions::new().with_keys_only())).await.unwrap();
    assert_eq!(rev(r.header()), 2, "[{k}] only the fitting put was applied");
}

#[tokio::test]
async fn request_too_large_is_rejected() {
    on_both(|kind, ep, _| Box::pin(too_large_scenario(kind, ep))).await;
}
