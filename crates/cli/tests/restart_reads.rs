//! Linearizable reads across restarts of a majority, with real `meridian server` processes.
//!
//! Three voters (one per datacenter, LAN preset). Writers put and compare-and-set five keys through every
//! member; one reader per member reads them linearizably through that member alone. Twenty times the leader
//! and one follower are killed with SIGKILL and restarted at once, so the restarted members come back
//! together while the survivor keeps its state (the shape that once let a restarted leader resume its term
//! and hand out read indexes below acknowledged writes). Each round waits for every member to have answered
//! reads again before the next kill. At the end every key is read once more, and the whole recorded history
//! goes to the simulation's linearizability checker: a stale read or a lost acknowledged write makes it
//! invalid.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::{poll_until, try_connect};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use meridian_sim::checker::{CheckResult, check_linearizability};
use meridian_sim::history::{Call, History, Operation, Outcome};

/// Kill-and-restart rounds.
const ROUNDS: usize = 20;
/// Register keys.
const KEYS: u64 = 5;
/// Writer tasks (each picks a member per operation).
const WRITERS: u32 = 3;
/// Bound on one request, so an operation against a dead member ends (as unknown or failed).
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between one client's operations: bounds the load on a two-core machine.
const PACE: Duration = Duration::from_millis(5);
/// Upper bound on any client's operations, so the load can never run unbounded.
const MAX_OPS_PER_CLIENT: u64 = 50_000;
/// Step budget of the checker per key.
const MAX_STEPS_PER_KEY: u64 = 50_000_000;

/// The history as the clients record it, timed in nanoseconds since the test began.
#[derive(Clone)]
struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).expect("fits")
    }

    fn invoke(&self, client: u32, call: Call) -> usize {
        let mut ops = self.ops.lock().expect("recorder");
        let id = ops.len();
        ops.push(Operation {
            id: id as u64,
            client,
            invoke: self.now(),
            complete: None,
            call,
            outcome: Outcome::Unknown,
        });
        id
    }

    /// An `Unknown` outcome keeps no completion time: the operation may take effect at any later moment.
    fn complete(&self, id: usize, outcome: Outcome) {
        let at = self.now();
        let mut ops = self.ops.lock().expect("recorder");
        ops[id].complete = (!matches!(outcome, Outcome::Unknown)).then_some(at);
        ops[id].outcome = outcome;
    }
}

/// What a failed write's error says about its fate. Meridian answers "etcdserver: no leader" only for a request it
/// did not propose, and a refused connection never carried the request: both definitely failed. Anything else
/// (a timeout, a connection lost mid-request, a leader change) may still have taken effect.
fn write_fate(e: &etcd_client::Error) -> Outcome {
    let text = e.to_string();
    if text.contains("etcdserver: no leader") || text.contains("Connection refused") {
        Outcome::Failed { reason: text }
    } else {
        Outcome::Unknown
    }
}

/// How long a client waits after its `failures`-th failure in a row: a cluster in an election is not asked
/// again and again, which would fill the history with unknown outcomes the checker must try everywhere.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(25 << failures.min(4))
}

fn key(k: u64) -> Vec<u8> {
    format!("r/{k}").into_bytes()
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

/// One linearizable get through `client`, recorded as client `id`; whether it succeeded.
async fn get(client: &mut etcd_client::Client, rec: &Recorder, id: u32, k: u64) -> bool {
    let op = rec.invoke(id, Call::Get { key: key(k) });
    match client.get(key(k), None).await {
        Ok(r) => {
            let kv = r.kvs().first();
            rec.complete(
                op,
                Outcome::Get {
                    value: kv.map(|kv| kv.value().to_vec()),
                    mod_revision: kv.map_or(0, |kv| kv.mod_revision()),
                    revision: revision(r.header()),
                },
            );
            true
        }
        Err(e) => {
            rec.complete(op, Outcome::Failed { reason: e.to_string() });
            false
        }
    }
}

/// A reader bound to one member: reads every key in turn until `stop`, counting answers in `answered`.
async fn reader(endpoint: String, id: u32, rec: Recorder, stop: Arc<AtomicBool>, answered: Arc<AtomicU64>) {
    let mut client = None;
    let mut failures = 0;
    for n in 0..MAX_OPS_PER_CLIENT {
        if stop.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(if failures == 0 { PACE } else { backoff(failures) }).await;
        if client.is_none() {
            client = try_connect(&endpoint, OP_TIMEOUT).await.ok();
        }
        let Some(c) = client.as_mut() else {
            failures += 1;
            continue;
        };
        if get(c, &rec, id, n % KEYS).await {
            answered.fetch_add(1, Ordering::Release);
            failures = 0;
        } else {
            // The member may have been restarted: connect afresh.
            client = None;
            failures += 1;
        }
    }
}

/// A writer: puts and compare-and-sets through a different member each time, with values unique in the
/// history. Every failure leaves the outcome unknown (a write may commit after its connection broke).
async fn writer(endpoints: Vec<String>, id: u32, rec: Recorder, stop: Arc<AtomicBool>) {
    let mut clients: Vec<Option<etcd_client::Client>> = vec![None; endpoints.len()];
    let mut last_seen: Vec<Option<Vec<u8>>> = vec![None; KEYS as usize];
    let mut failures = 0;
    for n in 0..MAX_OPS_PER_CLIENT {
        if stop.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(if failures == 0 { PACE } else { backoff(failures) }).await;
        let m = (n as usize + id as usize) % endpoints.len();
        if clients[m].is_none() {
            clients[m] = try_connect(&endpoints[m], OP_TIMEOUT).await.ok();
        }
        let Some(c) = clients[m].as_mut() else {
            failures += 1;
            continue;
        };
        let k = (n * 7 + u64::from(id)) % KEYS;
        let value = format!("w{id}-{n}").into_bytes();
        let ok = if n % 3 == 2 {
            let expected = last_seen[k as usize].clone();
            let op = rec.invoke(id, Call::Cas { key: key(k), expected: expected.clone(), value: value.clone() });
            let compare = match &expected {
                Some(v) => Compare::value(key(k), CompareOp::Equal, v.clone()),
                None => Compare::create_revision(key(k), CompareOp::Equal, 0),
            };
            let txn = Txn::new().when([compare]).and_then([TxnOp::put(key(k), value.clone(), None)]);
            match c.txn(txn).await {
                Ok(r) => {
                    rec.complete(op, Outcome::Cas { succeeded: r.succeeded(), revision: revision(r.header()) });
                    if r.succeeded() {
                        last_seen[k as usize] = Some(value);
                    }
                    true
                }
                Err(e) => {
                    rec.complete(op, write_fate(&e));
                    false
                }
            }
        } else {
            let op = rec.invoke(id, Call::Put { key: key(k), value: value.clone(), lease: None });
            match c.put(key(k), value.clone(), None).await {
                Ok(r) => {
                    rec.complete(op, Outcome::Put { revision: revision(r.header()) });
                    last_seen[k as usize] = Some(value);
                    true
                }
                Err(e) => {
                    rec.complete(op, write_fate(&e));
                    false
                }
            }
        };
        if ok {
            failures = 0;
        } else {
            clients[m] = None;
            failures += 1;
        }
    }
}

#[test]
fn linearizable_reads_stay_fresh_when_the_leader_and_a_follower_restart_together() {
    let specs = [voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")];
    let mut cluster = Cluster::start(&specs, "lan");
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.endpoint()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let rec = Recorder { start: Instant::now(), ops: Arc::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let answered: Vec<Arc<AtomicU64>> = endpoints.iter().map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let id = 100 + i as u32;
        tasks.push(rt.spawn(reader(ep.clone(), id, rec.clone(), stop.clone(), answered[i].clone())));
    }
    for id in 0..WRITERS {
        tasks.push(rt.spawn(writer(endpoints.clone(), id, rec.clone(), stop.clone())));
    }

    let mut kills = Vec::new();
    for round in 0..ROUNDS {
        // Every member must have answered reads since the last restart before the next one.
        let before: Vec<u64> = answered.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let progressed = poll_until(LEADER_DEADLINE, Duration::from_millis(20), || {
            answered.iter().zip(&before).all(|(a, b)| a.load(Ordering::Acquire) >= b + 5)
        });
        assert!(progressed, "round {round}: some member stopped answering reads\n{}", cluster.log_tails(30));
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let follower = (leader + 1 + round % 2) % specs.len();
        cluster.kill9(leader);
        cluster.kill9(follower);
        cluster.spawn(leader);
        cluster.spawn(follower);
        kills.push((cluster.nodes[leader].spec.name.clone(), cluster.nodes[follower].spec.name.clone()));
    }
    let before: Vec<u64> = answered.iter().map(|a| a.load(Ordering::Acquire)).collect();
    let progressed = poll_until(LEADER_DEADLINE, Duration::from_millis(20), || {
        answered.iter().zip(&before).all(|(a, b)| a.load(Ordering::Acquire) >= b + 5)
    });
    assert!(progressed, "after the last round some member stopped answering reads\n{}", cluster.log_tails(30));
    stop.store(true, Ordering::Release);
    for t in tasks {
        rt.block_on(t).expect("client task");
    }

    // A last read of every key through the leader: an acknowledged write missing here is a lost write.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let final_reads = rt.block_on(async {
        let mut client = try_connect(&endpoints[leader], OP_TIMEOUT).await.expect("connect to the leader");
        let mut ok = 0;
        for k in 0..KEYS {
            ok += u32::from(get(&mut client, &rec, 200, k).await);
        }
        ok
    });
    assert_eq!(final_reads, KEYS as u32, "the final reads must all be answered");

    let ops = rec.ops.lock().expect("recorder").clone();
    let history = History { ops, ..History::default() };
    let reads = history.ops.iter().filter(|o| matches!(o.outcome, Outcome::Get { .. })).count();
    let acked = history.ops.iter().filter(|o| matches!(o.outcome, Outcome::Put { .. } | Outcome::Cas { .. })).count();
    let unknown = history.ops.iter().filter(|o| matches!(o.outcome, Outcome::Unknown)).count();
    eprintln!("kills (leader, follower): {kills:?}");
    let failed = history.ops.iter().filter(|o| matches!(o.outcome, Outcome::Failed { .. })).count();
    eprintln!("{reads} reads answered, {acked} writes acknowledged, {failed} failed, {unknown} outcomes unknown");
    assert!(reads > 20 * ROUNDS, "too few reads to judge: {reads}");
    assert!(acked > 10 * ROUNDS, "too few acknowledged writes to judge: {acked}");
    let lin = check_linearizability(&history, MAX_STEPS_PER_KEY);
    let failures: Vec<String> = lin.failures.iter().map(ToString::to_string).collect();
    assert_eq!(lin.result, CheckResult::Ok, "history not linearizable:\n{}", failures.join("\n"));
}

/// A member that was down while the cluster moved on must not answer serializable reads from the state it had
/// before it stopped (Patroni reads its leader key so and once took a primary role back from a stale answer).
/// Each round: kill a follower, change a key through the others, restart the follower and read the key
/// serializably through it alone, over and over from the moment its port opens: never the old value.
#[test]
fn a_restarted_member_never_answers_serializable_reads_from_before_its_stop() {
    let specs = [voter("m1", "dc-a"), voter("m2", "dc-b"), voter("m3", "dc-c")];
    let mut cluster = Cluster::start(&specs, "lan");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for round in 0..5 {
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let follower = (leader + 1) % 3;
        let (old, new) = (format!("old-{round}"), format!("new-{round}"));
        let leader_ep = cluster.nodes[leader].endpoint();
        rt.block_on(async {
            let mut c = common::connect(&leader_ep).await;
            c.put("leader-key", old.as_str(), None).await.expect("put old");
        });
        // The follower has applied the old value before it stops.
        let follower_ep = cluster.nodes[follower].endpoint();
        assert!(poll_until(LEADER_DEADLINE, Duration::from_millis(20), || {
            rt.block_on(serializable_get(&follower_ep)).is_some_and(|v| v == old)
        }));
        cluster.kill9(follower);
        rt.block_on(async {
            let mut c = common::connect(&leader_ep).await;
            c.put("leader-key", new.as_str(), None).await.expect("put new");
        });
        cluster.spawn(follower);
        // From the first answer on: the new value only (a read may fail or wait while the member catches up).
        let deadline = Instant::now() + LEADER_DEADLINE;
        let mut answers = 0;
        while answers < 20 && Instant::now() < deadline {
            if let Some(v) = rt.block_on(serializable_get(&follower_ep)) {
                assert_eq!(v, new, "round {round}: the restarted member answered from before its stop");
                answers += 1;
            }
        }
        assert_eq!(answers, 20, "round {round}: the restarted member never answered\n{}", cluster.log_tails(40));
    }
}

/// `leader-key`'s value by a serializable read through `endpoint` alone, on a fresh connection; `None` if the
/// member does not answer (yet).
async fn serializable_get(endpoint: &str) -> Option<String> {
    let mut c = try_connect(endpoint, Duration::from_millis(200)).await.ok()?;
    let opts = etcd_client::GetOptions::new().with_serializable();
    let get = c.get("leader-key", Some(opts));
    let resp = tokio::time::timeout(OP_TIMEOUT, get).await.ok()?.ok()?;
    resp.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}
