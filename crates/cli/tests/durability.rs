//! Durability under kill -9: concurrent writers (etcd-client), SIGKILL while writes are in
//! flight, restart on the same data dir, and check that
//! - every acknowledged write is present, at the revision it was acknowledged with;
//! - revisions continue (the first write after the restart is above every acknowledged one);
//! - nothing is half-applied: each write is a txn putting a pair of keys, and after the restart
//!   every pair is both-or-neither;
//! - no write appears that was never attempted.
//!
//! Three kill/restart cycles in one test, then a kill during a physical compaction.
//!
//! A second test restarts a member holding leases: keep-alives and expiry must work afterwards.

mod common;

use common::{Kind, Server, connect};
use etcd_client::{CompactionOptions, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
/// Upper bound of writes per writer per cycle (the kill normally comes much earlier).
const MAX_OPS: usize = 3000;
/// Acknowledged writes (per cycle) after which the server is killed.
const KILL_AFTER_ACKS: usize = 300;
const CYCLES: usize = 3;

/// (cycle, writer, index) of one pair write.
type OpId = (usize, usize, usize);

#[derive(Clone, Default)]
struct Ledger {
    /// Acknowledged pair writes and the revision each was acknowledged at.
    acked: BTreeMap<OpId, i64>,
    /// Highest index attempted by each (cycle, writer).
    attempted: HashMap<(usize, usize), usize>,
    /// Writers of the current cycle that stopped because of an error (i.e. were cut off).
    cut_off: usize,
}

fn key(op: OpId, half: &str) -> String {
    format!("d/{}/{:02}/{:05}/{half}", op.0, op.1, op.2)
}

fn value(op: OpId) -> String {
    format!("v{}-{}-{}", op.0, op.1, op.2)
}

fn parse_key(k: &str) -> Option<(OpId, String)> {
    let parts: Vec<&str> = k.split('/').collect();
    if parts.len() != 5 || parts[0] != "d" {
        return None;
    }
    Some(((parts[1].parse().ok()?, parts[2].parse().ok()?, parts[3].parse().ok()?), parts[4].to_string()))
}

async fn writer(endpoint: String, cycle: usize, w: usize, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut client) = common::try_connect(&endpoint, Duration::from_secs(5)).await else {
        ledger.lock().unwrap().cut_off += 1;
        return;
    };
    for i in 0..MAX_OPS {
        let op = (cycle, w, i);
        ledger.lock().unwrap().attempted.insert((cycle, w), i);
        let txn =
            Txn::new().and_then([TxnOp::put(key(op, "a"), value(op), None), TxnOp::put(key(op, "b"), value(op), None)]);
        match tokio::time::timeout(Duration::from_secs(5), client.txn(txn)).await {
            Ok(Ok(resp)) => {
                let rev = resp.header().map(|h| h.revision()).unwrap_or(-1);
                ledger.lock().unwrap().acked.insert(op, rev);
            }
            _ => {
                ledger.lock().unwrap().cut_off += 1;
                return;
            }
        }
    }
}

/// Check the store against the ledger; returns the highest acknowledged revision.
async fn verify(server: &Server, ledger: &Ledger, when: &str) -> i64 {
    let mut c = connect(&server.endpoint()).await;
    let r = c
        .get("d/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap_or_else(|e| panic!("{when}: reading back failed: {e}"));
    let mut present: HashMap<OpId, Vec<(String, String, i64)>> = HashMap::new();
    for kv in r.kvs() {
        let k = String::from_utf8_lossy(kv.key()).into_owned();
        let (op, half) = parse_key(&k).unwrap_or_else(|| panic!("{when}: unexpected key {k}"));
        present.entry(op).or_default().push((
            half,
            String::from_utf8_lossy(kv.value()).into_owned(),
            kv.mod_revision(),
        ));
    }
    let mut problems = Vec::new();
    for (op, halves) in &present {
        let mut names: Vec<&str> = halves.iter().map(|h| h.0.as_str()).collect();
        names.sort();
        if names != ["a", "b"] {
            problems.push(format!("half-applied pair {op:?}: only {names:?} present"));
            continue;
        }
        if halves.iter().any(|h| h.1 != value(*op)) || halves[0].2 != halves[1].2 {
            problems.push(format!("pair {op:?} inconsistent: {halves:?}"));
        }
        match ledger.attempted.get(&(op.0, op.1)) {
            Some(&last) if op.2 <= last => {}
            _ => problems.push(format!("pair {op:?} was never attempted")),
        }
    }
    let mut max_acked = 0;
    for (op, rev) in &ledger.acked {
        max_acked = max_acked.max(*rev);
        match present.get(op) {
            None => problems.push(format!("acknowledged write {op:?} (rev {rev}) lost")),
            Some(h) if h[0].2 != *rev => {
                problems.push(format!("acknowledged write {op:?} acked at rev {rev} but stored at rev {}", h[0].2))
            }
            Some(_) => {}
        }
    }
    if problems.len() > 20 {
        let n = problems.len();
        problems.truncate(20);
        problems.push(format!("... {} more", n - 20));
    }
    assert!(
        problems.is_empty(),
        "{when} ({} acked, {} pairs present):\n{}",
        ledger.acked.len(),
        present.len(),
        problems.join("\n")
    );
    max_acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_loses_no_acknowledged_write() {
    let kind = Kind::subject();
    let mut server = tokio::task::block_in_place(|| Server::start(kind));
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    for cycle in 0..CYCLES {
        ledger.lock().unwrap().cut_off = 0;
        let acked_before = ledger.lock().unwrap().acked.len();
        let handles: Vec<_> =
            (0..WRITERS).map(|w| tokio::spawn(writer(server.endpoint(), cycle, w, ledger.clone()))).collect();
        // Wait (bounded) until enough writes of this cycle were acknowledged, then SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let acked = ledger.lock().unwrap().acked.len() - acked_before;
            if acked >= KILL_AFTER_ACKS || handles.iter().all(|h| h.is_finished()) {
                break;
            }
            assert!(Instant::now() < deadline, "cycle {cycle}: only {acked} writes acknowledged in 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pid = server.pid();
        tokio::task::block_in_place(|| server.kill9());
        for h in handles {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("writer did not stop after the kill")
                .expect("writer panicked");
        }
        let cut_off = ledger.lock().unwrap().cut_off;
        eprintln!(
            "cycle {cycle}: killed pid {pid:?} with {} writes acknowledged this cycle, {cut_off} writers cut off",
            ledger.lock().unwrap().acked.len() - acked_before
        );
        assert!(
            cut_off > 0,
            "cycle {cycle}: the kill (pid {pid:?}) came after all writers finished; \
             no write was in flight"
        );

        tokio::task::block_in_place(|| server.restart());
        let snapshot = ledger.lock().unwrap().clone();
        let max_acked = verify(&server, &snapshot, &format!("after kill/restart #{}", cycle + 1)).await;
        let mut c = connect(&server.endpoint()).await;
        let r = c.put(format!("after/{cycle}"), "x", None).await.unwrap();
        let next = r.header().map(|h| h.revision()).unwrap_or(-1);
        assert!(
            next > max_acked,
            "cycle {cycle}: first write after restart got revision {next}, not above the highest \
             acknowledged revision {max_acked}"
        );
    }

    // Kill during a physical compaction of the whole history, then restart cleanly.
    let mut c = connect(&server.endpoint()).await;
    let head = c.get("after/", Some(GetOptions::new().with_prefix())).await.unwrap();
    let head_rev = head.header().map(|h| h.revision()).unwrap();
    let compact_rev = head_rev - 1;
    let compaction =
        tokio::spawn(async move { c.compact(compact_rev, Some(CompactionOptions::new().with_physical())).await });
    // Let the compaction request get on its way, then kill (it may or may not have been applied).
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::task::block_in_place(|| server.kill9());
    let outcome = tokio::time::timeout(Duration::from_secs(20), compaction)
        .await
        .expect("compaction call did not return after the kill")
        .expect("compaction task panicked");
    tokio::task::block_in_place(|| server.restart());
    let snapshot = ledger.lock().unwrap().clone();
    verify(&server, &snapshot, "after a kill during compaction").await;
    let mut c = connect(&server.endpoint()).await;
    // Whether or not the compaction had been applied, compacting to the same revision now either
    // succeeds or reports it as already compacted; afterwards older revisions are gone.
    match c.compact(compact_rev, None).await {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("required revision has been compacted"),
                "re-compaction after restart failed unexpectedly: {msg} (first attempt: {outcome:?})"
            );
        }
    }
    let r = c.get("after/0", Some(GetOptions::new().with_revision(compact_rev - 1))).await;
    match r {
        Err(e) => {
            assert!(e.to_string().contains("required revision has been compacted"), "reading below the compaction: {e}")
        }
        Ok(r) => panic!("reading below the compaction revision succeeded: {r:?}"),
    }
    let r = c.put("final", "x", None).await.unwrap();
    assert!(r.header().map(|h| h.revision()).unwrap() > head_rev);
}

/// A restarted single member leads before anything in it watches leadership; its lease clock must
/// run all the same: a keep-alive is answered with a TTL, and a short lease expires and takes its
/// key with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_kept_alive_and_expire_after_a_restart() {
    let mut server = Server::start(Kind::Meridian);
    let mut c = connect(&server.endpoint()).await;
    let kept = c.lease_grant(60, None).await.unwrap().id();
    let short = c.lease_grant(2, None).await.unwrap().id();
    let put = c.put("leased", "x", Some(PutOptions::new().with_lease(short))).await.unwrap();
    let put_rev = put.header().map(|h| h.revision()).unwrap();
    drop(c);

    tokio::task::block_in_place(|| server.restart());
    let mut c = connect(&server.endpoint()).await;
    let (mut keeper, mut answers) = c.lease_keep_alive(kept).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let answer = answers.message().await.expect("keep-alive answered without an error").expect("one answer");
    assert_eq!((answer.id(), answer.ttl()), (kept, 60), "a restart gives every lease its full TTL again");

    // From the put's revision on, so a delete that already happened still arrives.
    let mut events = c.watch("leased", Some(WatchOptions::new().with_start_revision(put_rev + 1))).await.unwrap();
    let expired = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(resp) = events.message().await.unwrap() {
            if resp.events().iter().any(|e| e.event_type() == EventType::Delete) {
                return;
            }
        }
        panic!("the watch ended before the leased key was deleted");
    });
    expired.await.expect("a 2 s lease still held its key 20 s after the restart");
    assert!(c.get("leased", None).await.unwrap().kvs().is_empty());
}
