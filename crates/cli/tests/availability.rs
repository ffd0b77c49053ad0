//! Availability under a bounded fault schedule, with real `meridian server` processes (three voters, one per
//! datacenter, LAN preset) and eight writers that each keep one put in flight: kill -9 of the leader and its
//! restart, SIGSTOP of the leader until the others elect a successor, then SIGCONT, and a planned move
//! (`etcdctl move-leader`). Every request is counted as succeeded, failed (a definite refusal: "no leader", "not
//! leader", ...) or unknown outcome (timed out, connection lost while in flight). Meridian holds requests through
//! an election instead of failing them, so none may fail; an unknown outcome is allowed only for a request in
//! flight at a faulty leader (at most a few per writer and fault); and no acknowledged write may be lost.
//! Writers use the members the harness has not faulted, as a client with several endpoints would after its first
//! error. `bench/failover` reports the same counts for etcd 3.4 and Meridian under each fault.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::load::verify_acks;
use common::{etcdctl, poll_until, try_connect};

const WRITERS: usize = 8;
/// Bound on one request (the client's deadline).
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound on the writes of one writer, so the load can never run unbounded.
const MAX_WRITES_PER_WRITER: usize = 100_000;
const TAG: &str = "av";
/// Acknowledged writes the load must add between two steps of the schedule.
const PROGRESS: u64 = 200;

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: Vec<String>,
    unknown: u64,
    acked: BTreeMap<String, String>,
}

/// The members writers may use (those the harness has not faulted).
type Usable = Arc<Mutex<Vec<String>>>;

fn classify(e: &etcd_client::Error) -> Result<(), String> {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let unknown = s.code() == tonic::Code::DeadlineExceeded
                || s.message().contains("request timed out")
                || s.message().contains("transport")
                || s.message().contains("connection")
                || s.code() == tonic::Code::Cancelled
                || s.code() == tonic::Code::Unknown;
            if unknown { Ok(()) } else { Err(format!("{:?}: {}", s.code(), s.message())) }
        }
        // A broken connection: the request may or may not have been applied.
        _ => Ok(()),
    }
}

fn start_writers(
    rt: &tokio::runtime::Runtime,
    usable: Usable,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    (0..WRITERS)
        .map(|w| {
            let (usable, stop, acks) = (usable.clone(), stop.clone(), acks.clone());
            rt.spawn(async move {
                let mut tally = Tally::default();
                let mut clients: BTreeMap<String, etcd_client::Client> = BTreeMap::new();
                for i in 0..MAX_WRITES_PER_WRITER {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let endpoint = {
                        let usable = usable.lock().unwrap();
                        usable[(w + i) % usable.len()].clone()
                    };
                    if !clients.contains_key(&endpoint) {
                        match try_connect(&endpoint, OP_TIMEOUT).await {
                            Ok(c) => {
                                clients.insert(endpoint.clone(), c);
                            }
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                        }
                    }
                    let client = clients.get_mut(&endpoint).expect("connected");
                    let (key, value) = (format!("load/{TAG}/{w:02}/{i:06}"), format!("{TAG}-{w}-{i}"));
                    match tokio::time::timeout(OP_TIMEOUT, client.put(key.clone(), value.clone(), None)).await {
                        Ok(Ok(_)) => {
                            acks.fetch_add(1, Ordering::SeqCst);
                            tally.ok += 1;
                            tally.acked.insert(key, value);
                        }
                        Ok(Err(e)) => match classify(&e) {
                            Ok(()) => {
                                tally.unknown += 1;
                                clients.remove(&endpoint);
                            }
                            Err(refusal) => tally.failed.push(refusal),
                        },
                        Err(_) => {
                            tally.unknown += 1;
                            clients.remove(&endpoint);
                        }
                    }
                }
                tally
            })
        })
        .collect()
}

/// Waits until every member but `except` names one leader other than `except`; returns it.
fn successor_without(cluster: &Cluster, except: usize) -> usize {
    let mut found = None;
    let ok = poll_until(LEADER_DEADLINE, Duration::from_millis(50), || {
        let ids: Vec<(usize, u64, u64)> = (0..cluster.nodes.len())
            .filter(|i| *i != except)
            .filter_map(|i| cluster.status(i).ok().map(|(id, leader, _)| (i, id, leader)))
            .collect();
        let leaders: Vec<u64> = ids.iter().map(|(_, _, l)| *l).collect();
        let agreed = ids.len() == cluster.nodes.len() - 1 && leaders.windows(2).all(|w| w[0] == w[1]);
        found = ids.iter().find(|(_, id, _)| agreed && Some(id) == leaders.first()).map(|(i, _, _)| *i);
        found.is_some()
    });
    assert!(ok, "no successor to member {except}\n{}", cluster.log_tails(30));
    found.expect("found")
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

#[test]
fn a_fault_schedule_fails_no_request_and_loses_no_acknowledged_write() {
    let specs = [voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")];
    let mut cluster = Cluster::start(&specs, "lan");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let usable: Usable = Arc::new(Mutex::new(cluster.live_endpoints()));
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&rt, usable.clone(), stop.clone(), acks.clone());
    // Between steps: the load must make progress (a fault that stopped the writes for good fails here).
    let progress = |what: &str, cluster: &Cluster| {
        let target = acks.load(Ordering::SeqCst) + PROGRESS;
        let ok = poll_until(LEADER_DEADLINE, Duration::from_millis(10), || acks.load(Ordering::SeqCst) >= target);
        assert!(ok, "writes stalled {what}\n{}", cluster.log_tails(30));
    };
    let set_usable = |all: Vec<String>, except: Option<usize>, nodes: &[common::cluster::Node]| {
        *usable.lock().unwrap() =
            all.into_iter().filter(|e| except.is_none_or(|i| *e != nodes[i].endpoint())).collect();
    };
    let all = cluster.live_endpoints();
    progress("at the start", &cluster);

    // kill -9 of the leader, then its restart.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    set_usable(all.clone(), Some(leader), &cluster.nodes);
    cluster.kill9(leader);
    successor_without(&cluster, leader);
    progress("after kill -9 of the leader", &cluster);
    cluster.spawn(leader);
    cluster.wait_agreed_leader(LEADER_DEADLINE);
    set_usable(all.clone(), None, &cluster.nodes);
    progress("after the restart", &cluster);

    // SIGSTOP of the leader until the others follow a successor, then SIGCONT.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let pid = cluster.pid(leader).expect("the leader runs");
    set_usable(all.clone(), Some(leader), &cluster.nodes);
    let stopped_at = Instant::now();
    signal(pid, "STOP");
    successor_without(&cluster, leader);
    eprintln!("successor after SIGSTOP in {:?}", stopped_at.elapsed());
    progress("while the old leader is stopped", &cluster);
    signal(pid, "CONT");
    cluster.wait_agreed_leader(LEADER_DEADLINE);
    set_usable(all.clone(), None, &cluster.nodes);
    progress("after SIGCONT", &cluster);

    // A planned move.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let target = cluster.status((leader + 1) % specs.len()).expect("status").0;
    let out = etcdctl(&all.join(","), &["move-leader", &format!("{target:x}")], None);
    assert!(out.ok(), "move-leader: {out:?}");
    progress("after the move", &cluster);

    stop.store(true, Ordering::SeqCst);
    let mut total = Tally::default();
    for w in writers {
        let t = rt.block_on(w).expect("writer");
        total.ok += t.ok;
        total.unknown += t.unknown;
        total.failed.extend(t.failed);
        total.acked.extend(t.acked);
    }
    eprintln!("requests: {} succeeded, {} failed, {} unknown outcome", total.ok, total.failed.len(), total.unknown);
    assert!(total.failed.is_empty(), "requests failed: {:?}", &total.failed[..total.failed.len().min(10)]);
    // Per writer and fault at most the request in flight at the faulty leader, and one sent to it before its
    // followers knew it was gone.
    assert!(total.unknown <= 2 * 2 * WRITERS as u64, "{} unknown outcomes", total.unknown);
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    verify_acks(&cluster.nodes[leader].endpoint(), &total.acked, TAG);
}
