//! Watch hub behaviour over an in-memory store: ordering, catch-up from history, slow consumers, filters,
//! compaction cancellation.

use std::sync::Arc;

use meridian_kv::{KvStore, MemBackend};
use meridian_proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest, ResponseHeader};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::*;

struct Headers;
impl HeaderSource for Headers {
    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader { revision, ..Default::default() }
    }
}

struct Fixture {
    kv: Arc<RwLock<KvStore<MemBackend>>>,
    hub: WatchHub<MemBackend>,
}

impl Fixture {
    fn new() -> Self {
        let kv = Arc::new(RwLock::new(KvStore::open(MemBackend::default()).unwrap()));
        let hub = WatchHub::new(kv.clone(), Arc::new(Headers), 1 << 20);
        Fixture { kv, hub }
    }

    /// Applies a command the way the apply loop does: store first, then the hub, without the kv lock held.
    fn apply(&self, cmd: Cmd) {
        let applied = self.kv.write().apply(&RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() }).unwrap();
        let rev = self.kv.read().current_revision();
        self.hub.on_events(rev, &applied.events);
    }

    fn put(&self, key: &str, value: &str) {
        self.apply(Cmd::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() }));
    }

    fn watch(&self, key: &str, range_end: &str, start: i64, cap: usize) -> (i64, Receiver) {
        let (tx, rx) = mpsc::channel(cap);
        let stream = self.hub.open_stream();
        let req = WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            start_revision: start,
            prev_kv: true,
            ..Default::default()
        };
        let id = self.hub.create(stream, &req, tx).unwrap();
        self.hub.announce(stream, id);
        (id, Receiver { rx, seen: Default::default() })
    }
}

struct Receiver {
    rx: mpsc::Receiver<Result<WatchResponse, tonic::Status>>,
    /// Revisions already delivered in earlier responses: one revision must never span two responses.
    seen: std::collections::BTreeSet<i64>,
}

impl Receiver {
    /// Every event received so far as (revision, key, value).
    fn drain(&mut self) -> Vec<(i64, String, String)> {
        let mut out = Vec::new();
        while let Ok(resp) = self.rx.try_recv() {
            let resp = resp.unwrap();
            let revs: std::collections::BTreeSet<i64> = resp.events.iter().map(event_revision).collect();
            assert!(revs.is_disjoint(&self.seen), "a revision was split across responses: {revs:?}");
            self.seen.extend(revs);
            for e in resp.events {
                let kv = e.kv.unwrap();
                out.push((kv.mod_revision, String::from_utf8(kv.key).unwrap(), String::from_utf8(kv.value).unwrap()));
            }
        }
        out
    }
}

#[test]
fn live_events_arrive_in_revision_order_for_matching_keys_only() {
    let f = Fixture::new();
    let (_, mut rx) = f.watch("a", "b", 0, 64);
    f.hub.catch_up_pass();
    f.put("a1", "x");
    f.put("zz", "ignored");
    f.put("a2", "y");
    assert_eq!(rx.drain(), vec![(2, "a1".into(), "x".into()), (4, "a2".into(), "y".into())]);
}

#[test]
fn historical_start_revision_replays_then_continues_without_gaps_or_duplicates() {
    let f = Fixture::new();
    for i in 0..5 {
        f.put("k", &i.to_string());
    }
    let (_, mut rx) = f.watch("k", "", 3, 64);
    // A write lands between registration and catch-up; it must appear exactly once.
    f.put("k", "late");
    assert!(!f.hub.catch_up_pass());
    f.put("k", "live");
    let revs: Vec<i64> = rx.drain().into_iter().map(|e| e.0).collect();
    assert_eq!(revs, vec![3, 4, 5, 6, 7, 8]);
}

#[test]
fn revisions_that_skip_the_hub_are_caught_up_from_history_not_skipped() {
    let f = Fixture::new();
    let (_, mut rx) = f.watch("k", "", 0, 64);
    f.hub.catch_up_pass();
    f.put("k", "seen-live");
    // Two writes reach the store without the hub hearing of them, as when a follower installs a snapshot.
    for v in ["via-snapshot-1", "via-snapshot-2"] {
        let put = PutRequest { key: "k".into(), value: v.into(), ..Default::default() };
        f.kv.write().apply(&RaftCommand { auth: None, cmd: Some(Cmd::Put(put)), ..Default::default() }).unwrap();
    }
    f.put("k", "next-live");
    assert!(!f.hub.catch_up_pass(), "caught up in one pass");
    f.put("k", "after");
    let got: Vec<(i64, String)> = rx.drain().into_iter().map(|(rev, _, v)| (rev, v)).collect();
    let want: Vec<(i64, String)> =
        [(2, "seen-live"), (3, "via-snapshot-1"), (4, "via-snapshot-2"), (5, "next-live"), (6, "after")]
            .into_iter()
            .map(|(r, v)| (r, v.to_owned()))
            .collect();
    assert_eq!(got, want, "no revision skipped, none repeated");
}

#[test]
fn slow_consumer_is_demoted_and_caught_up_without_blocking_others() {
    let f = Fixture::new();
    let (_, mut slow) = f.watch("k", "", 0, 2);
    let (_, mut fast) = f.watch("k", "", 0, 1024);
    f.hub.catch_up_pass();
    for i in 0..50 {
        f.put("k", &i.to_string());
    }
    assert_eq!(fast.drain().len(), 50, "the fast watcher is not held back");
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(slow.drain().into_iter().map(|e| e.0));
        if !f.hub.catch_up_pass() && got.len() == 50 {
            break;
        }
    }
    got.extend(slow.drain().into_iter().map(|e| e.0));
    assert_eq!(got, (2..52).collect::<Vec<i64>>(), "every revision exactly once, in order");
}

#[test]
fn catch_up_batches_history_into_one_response_stamped_with_current_revision() {
    let f = Fixture::new();
    for i in 0..3 {
        f.put("w", &i.to_string());
    }
    f.put("other", "x");
    let (_, mut rx) = f.watch("w", "", 2, 64);
    f.hub.catch_up_pass();
    let resp = rx.rx.try_recv().unwrap().unwrap();
    assert_eq!(resp.events.len(), 3);
    assert_eq!(resp.header.unwrap().revision, 5, "etcd stamps catch-up with the store revision");
}

#[test]
fn watch_may_start_exactly_at_the_compact_revision() {
    let f = Fixture::new();
    for i in 0..5 {
        f.put("k", &i.to_string());
    }
    f.apply(Cmd::Compaction(CompactionRequest { revision: 5, physical: true }));
    f.put("k", "after");
    let (_, mut rx) = f.watch("k", "", 5, 64);
    f.hub.catch_up_pass();
    let revs: Vec<i64> = rx.drain().into_iter().map(|e| e.0).collect();
    assert_eq!(revs, vec![5, 6, 7], "the put retained at the compact revision replays, then later ones");
}

#[test]
fn watcher_behind_compaction_is_cancelled_with_compact_revision() {
    let f = Fixture::new();
    for i in 0..10 {
        f.put("k", &i.to_string());
    }
    f.apply(Cmd::Compaction(CompactionRequest { revision: 8, physical: false }));
    let (id, mut rx) = f.watch("k", "", 3, 64);
    f.hub.catch_up_pass();
    let resp = rx.rx.try_recv().unwrap().unwrap();
    assert!(resp.canceled);
    assert_eq!(resp.watch_id, id);
    assert_eq!(resp.compact_revision, 8);
    assert_eq!(f.hub.watcher_count(), 0);
}

#[test]
fn filters_drop_puts_or_deletes_and_prev_kv_is_carried() {
    let f = Fixture::new();
    let (tx, mut rx) = mpsc::channel(64);
    let stream = f.hub.open_stream();
    let req = WatchCreateRequest {
        key: "k".into(),
        filters: vec![FilterType::Noput as i32],
        prev_kv: true,
        ..Default::default()
    };
    let id = f.hub.create(stream, &req, tx).unwrap();
    f.hub.announce(stream, id);
    f.hub.catch_up_pass();
    f.put("k", "v1");
    f.apply(Cmd::DeleteRange(DeleteRangeRequest { key: "k".into(), ..Default::default() }));
    let resp = rx.try_recv().unwrap().unwrap();
    assert_eq!(resp.events.len(), 1);
    assert_eq!(resp.events[0].r#type, EventType::Delete as i32);
    assert_eq!(resp.events[0].prev_kv.as_ref().unwrap().value, b"v1".to_vec());
    assert!(rx.try_recv().is_err());
}

#[test]
fn client_chosen_duplicate_watch_id_is_rejected_and_auto_ids_start_at_zero() {
    let f = Fixture::new();
    let stream = f.hub.open_stream();
    let (tx, _rx) = mpsc::channel(4);
    let auto = WatchCreateRequest { key: "k".into(), ..Default::default() };
    assert_eq!(f.hub.create(stream, &auto, tx.clone()).unwrap(), 0);
    assert_eq!(f.hub.create(stream, &auto, tx.clone()).unwrap(), 1);
    let chosen = WatchCreateRequest { key: "k".into(), watch_id: 7, ..Default::default() };
    assert_eq!(f.hub.create(stream, &chosen, tx.clone()).unwrap(), 7);
    assert_eq!(f.hub.create(stream, &chosen, tx).unwrap_err(), EtcdError::DuplicateWatchId);
}

#[test]
fn oversized_responses_are_fragmented_when_asked() {
    let events: Vec<Event> = (0..10)
        .map(|i| Event {
            kv: Some(meridian_proto::mvccpb::KeyValue {
                key: format!("k{i}").into(),
                value: vec![b'x'; 100],
                mod_revision: 5,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let resp = WatchResponse { watch_id: 1, events, ..Default::default() };
    let parts = fragment(resp, 300);
    assert!(parts.len() > 1);
    assert!(parts[..parts.len() - 1].iter().all(|p| p.fragment));
    assert!(!parts[parts.len() - 1].fragment);
    assert_eq!(parts.iter().map(|p| p.events.len()).sum::<usize>(), 10);
}

#[test]
fn range_rules_match_etcd() {
    assert!(in_range(b"a", b"a", b""));
    assert!(!in_range(b"ab", b"a", b""));
    assert!(in_range(b"zzz", b"b", b"\0"));
    assert!(!in_range(b"a", b"b", b"\0"));
    assert!(in_range(b"b", b"a", b"c"));
    assert!(!in_range(b"c", b"a", b"c"));
}
