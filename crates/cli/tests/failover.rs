//! Failover drills with real `meridian server` processes: the canonical layout (voters 2+2+1 over dc-a, dc-b,
//! dc-c plus a learner in dc-d) with `leader_preference = ["dc-a", "dc-b"]` and a short failback hold.
//!
//! - at start the leader settles in dc-a, and `/status` says why;
//! - dc-a partitioned through the emulation layer (`PUT /faults` on every member), then healed;
//! - every process of dc-a killed with SIGKILL, then restarted.
//!
//! In both drills a bounded write load runs through endpoints outside dc-a. The leader must move to dc-b, writes
//! must go on, and after the heal leadership must return to dc-a no sooner than the hold and then stay: the
//! leader sequence recorded by polling every member's `/status` may only be dc-a → (dc-c →) dc-b → dc-a. At the
//! end no acknowledged write is lost, the learner's serializable read sees the last write, a watch on the
//! learner saw every write in revision order, and every member's HashKV agrees at one revision.
//!
//! The drills run one at a time (each is six processes on a possibly two-core machine). Timings are printed;
//! run with `--nocapture` to see them.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options, canonical};
use common::leader_trace::{Change, LeaderTrace};
use common::load::{Load, OP_TIMEOUT, PROGRESS_DEADLINE, read_load, verify_acks};
use common::{block_on_fresh, connect, poll_until};
use etcd_client::{EventType, GetOptions, WatchOptions};

/// The failback hold configured in the topology.
const HOLD: Duration = Duration::from_millis(2000);
/// Bound on any leadership change (election, transfer after the hold) on a loaded machine.
const LEADER_DEADLINE: Duration = Duration::from_secs(60);
/// How long the leader must stay put after returning for the drill to call it stable.
const QUIET: Duration = Duration::from_secs(4);
/// The learner of the canonical layout.
const LEARNER: &str = "sg1";

/// One drill at a time: each starts six processes.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn options() -> Options {
    Options {
        preset: "lan".into(),
        leader_preference: vec!["dc-a".into(), "dc-b".into()],
        failback_hold_ms: Some(u64::try_from(HOLD.as_millis()).expect("hold fits")),
        fault_injection: true,
        extra_args: Vec::new(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn the_leader_settles_in_the_most_preferred_dc_and_status_says_why() {
    let _serial = serial();
    let started = Instant::now();
    let cluster = Cluster::start_with(&canonical(), &options());
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", LEADER_DEADLINE);
    eprintln!("affinity: leader {} in dc-a {} ms after start", cluster.nodes[leader].spec.name, ms(started.elapsed()));
    // The reason is refreshed every heartbeat; poll until every member explains the placement in dc-a and the
    // leader has settled. Right after it takes over, a leader has no acknowledgements from its followers yet and
    // truthfully reports too few healthy voters; that must pass within the deadline.
    let mut reasons = Vec::new();
    let explained = poll_until(LEADER_DEADLINE, Duration::from_millis(50), || {
        reasons = (0..cluster.nodes.len()).map(|i| cluster.admin_status(i).map(|r| r.leader_reason)).collect();
        reasons.iter().all(|r| r.as_ref().is_ok_and(|r| !r.is_empty() && r.contains("dc-a")))
            && reasons.get(leader).is_some_and(|r| r.as_ref().is_ok_and(|r| r.contains("most preferred")))
    });
    assert!(explained, "leader_reason does not explain the placement: {reasons:?}");
    let own = cluster.admin_status(leader).expect("leader status");
    assert!(own.is_leader && own.leader.as_ref().is_some_and(|l| l.dc == "dc-a"), "{own:?}");
    assert!(own.leader_reason.contains("most preferred"), "leader's reason: {}", own.leader_reason);
    eprintln!("affinity: leader_reason {:?}", own.leader_reason);
}

/// How dc-a is taken away and given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    /// `isolated_dcs = ["dc-a"]` on every member; healed with empty faults.
    Partition,
    /// SIGKILL of every dc-a process; healed by restarting them on their data.
    Kill,
}

/// Events of a watch on the learner: (key, mod revision) of every put, or the error that ended it.
#[derive(Default)]
struct Watched {
    events: Vec<(String, i64)>,
    error: Option<String>,
}

/// Opens a watch on the learner for `load/TAG/` before any write, collecting into the returned slot.
fn watch_learner(rt: &tokio::runtime::Runtime, endpoint: String, tag: &str) -> Arc<Mutex<Watched>> {
    let slot: Arc<Mutex<Watched>> = Arc::default();
    let prefix = format!("load/{tag}/");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let out = slot.clone();
    rt.spawn(async move {
        let mut client = connect(&endpoint).await;
        let opened = client.watch(prefix, Some(WatchOptions::new().with_prefix())).await;
        // etcd-client returns before the server confirms; the load starts only once the watch is created.
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                out.lock().unwrap().error = Some(format!("opening the watch: {e}"));
                ready_tx.send(()).ok();
                return;
            }
        };
        match stream.message().await {
            Ok(Some(resp)) if resp.created() => {}
            other => out.lock().unwrap().error = Some(format!("expected the watch's creation, got {other:?}")),
        }
        ready_tx.send(()).ok();
        loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    let mut w = out.lock().unwrap();
                    for e in resp.events() {
                        match (e.event_type(), e.kv()) {
                            (EventType::Put, Some(kv)) => {
                                w.events.push((kv.key_str().unwrap_or("<binary>").to_owned(), kv.mod_revision()))
                            }
                            other => w.error = Some(format!("unexpected event {other:?}")),
                        }
                    }
                }
                Ok(None) => {
                    out.lock().unwrap().error = Some("the watch stream ended".into());
                    return;
                }
                Err(e) => {
                    out.lock().unwrap().error = Some(format!("watch stream: {e}"));
                    return;
                }
            }
        }
    });
    ready_rx.recv_timeout(PROGRESS_DEADLINE).expect("the watch on the learner opens");
    assert_eq!(slot.lock().unwrap().error, None, "watch on the learner");
    slot
}

/// The leader's datacenter sequence must be dc-a, optionally one dc-c leader that hands over, dc-b, dc-a —
/// one leader per step: a second leader inside a step is a flap, too.
fn assert_no_flap(changes: &[Change], t0: Instant) {
    let dcs: Vec<&str> = changes.iter().map(|c| c.dc.as_str()).collect();
    let shown: Vec<String> = changes
        .iter()
        .map(|c| {
            let rel = c.at.checked_duration_since(t0).map_or_else(|| "before".to_owned(), |d| format!("+{} ms", ms(d)));
            format!("{}@{} (term {}, {rel})", c.name, c.dc, c.term)
        })
        .collect();
    eprintln!("leader sequence: {}", shown.join(" -> "));
    let ok = dcs == ["dc-a", "dc-b", "dc-a"] || dcs == ["dc-a", "dc-c", "dc-b", "dc-a"];
    assert!(ok, "the leader flapped or went elsewhere: {}", shown.join(" -> "));
}

fn drill(outage: Outage) {
    let _serial = serial();
    let tag = match outage {
        Outage::Partition => "part",
        Outage::Kill => "kill",
    };
    let rt = runtime();
    let mut cluster = Cluster::start_with(&canonical(), &options());
    cluster.wait_admin_leader_in("dc-a", LEADER_DEADLINE);
    let trace = LeaderTrace::start(&cluster);
    let dc_a: Vec<usize> = (0..cluster.nodes.len()).filter(|i| cluster.nodes[*i].spec.dc == "dc-a").collect();
    let outside: Vec<String> =
        (0..cluster.nodes.len()).filter(|i| !dc_a.contains(i)).map(|i| cluster.nodes[i].endpoint()).collect();
    let learner = cluster.index(LEARNER);
    let watched = watch_learner(&rt, cluster.nodes[learner].endpoint(), tag);

    // Three writers pausing 10 ms between writes: enough to see every phase, little enough for two cores.
    let load = Load::start_paced(&rt, outside.clone(), 3, tag, Duration::from_millis(10));
    load.wait_more(50, &cluster, "before the outage");

    let t0 = Instant::now();
    match outage {
        Outage::Partition => cluster.put_faults_everywhere(r#"{"isolated_dcs": ["dc-a"]}"#),
        Outage::Kill => dc_a.iter().for_each(|i| cluster.kill9(*i)),
    }
    let first_new = trace
        .wait_for(LEADER_DEADLINE, |c| c.dc != "dc-a")
        .unwrap_or_else(|| panic!("{tag}: no leader outside dc-a\n{}", cluster.log_tails(40)));
    let in_b = trace.wait_for(LEADER_DEADLINE, |c| c.dc == "dc-b").unwrap_or_else(|| {
        panic!("{tag}: the leader never reached dc-b: {:?}\n{}", trace.changes(), cluster.log_tails(40))
    });
    load.wait_more(50, &cluster, "with dc-a out");
    let first_write = load.first_ack_after(first_new.at).expect("acks after the new leader");
    eprintln!(
        "{tag}: new leader {}@{} seen after {} ms; first write acknowledged after {} ms; leader in dc-b ({}) after {} ms",
        first_new.name,
        first_new.dc,
        ms(first_new.at.saturating_duration_since(t0)),
        ms(first_write.saturating_duration_since(t0)),
        in_b.name,
        ms(in_b.at.saturating_duration_since(t0))
    );
    // The dc-b leader explains why it is not in dc-a (the reason is refreshed every heartbeat).
    let b_leader = cluster.index(&in_b.name);
    let mut reason = String::new();
    let explained = poll_until(LEADER_DEADLINE, Duration::from_millis(50), || {
        reason = cluster.admin_status(b_leader).map(|r| r.leader_reason).unwrap_or_default();
        reason.contains("dc-a unhealthy")
    });
    assert!(explained, "{tag}: the dc-b leader's reason does not mention dc-a: {reason:?}");
    eprintln!("{tag}: leader_reason in dc-b: {reason:?}");
    // The verdicts, decided by quorum and written through the log, mark dc-a down and dc-b up.
    let mut verdicts = Default::default();
    let down = poll_until(LEADER_DEADLINE, Duration::from_millis(50), || {
        verdicts = cluster.admin_status(b_leader).map(|r| states(&r.verdicts)).unwrap_or_default();
        verdicts.get("dc-a").map(String::as_str) == Some("down")
            && verdicts.get("dc-b").map(String::as_str) == Some("up")
    });
    assert!(down, "{tag}: the verdicts do not show dc-a down: {verdicts:?}");

    let t1 = Instant::now();
    match outage {
        Outage::Partition => cluster.put_faults_everywhere("{}"),
        Outage::Kill => dc_a.iter().for_each(|i| cluster.spawn(*i)),
    }
    let back = trace.wait_for(LEADER_DEADLINE, |c| c.dc == "dc-a").unwrap_or_else(|| {
        panic!("{tag}: leadership never returned to dc-a: {:?}\n{}", trace.changes(), cluster.log_tails(40))
    });
    let failback = back.at.saturating_duration_since(t1);
    eprintln!("{tag}: leader back in dc-a ({}) {} ms after the heal (hold {} ms)", back.name, ms(failback), ms(HOLD));
    assert!(failback >= HOLD, "{tag}: leadership returned after {failback:?}, before the hold of {HOLD:?}");
    let stable = trace
        .wait_stable(QUIET, LEADER_DEADLINE)
        .unwrap_or_else(|| panic!("{tag}: the leader never settled: {:?}", trace.changes()));
    assert_eq!(stable, back, "{tag}: the leader moved again after returning to dc-a");
    load.wait_more(50, &cluster, "after the failback");
    let (acked, failed) = load.finish(&rt);
    assert_no_flap(&trace.changes(), t0);
    drop(trace);
    eprintln!("{tag}: {} acknowledged writes, {failed} failed attempts", acked.len());

    // Everyone agrees on the leader in dc-a; nothing acknowledged is lost, through any member.
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", LEADER_DEADLINE);
    let mut verdicts = Default::default();
    let all_up = poll_until(LEADER_DEADLINE, Duration::from_millis(50), || {
        verdicts = cluster.admin_status(leader).map(|r| states(&r.verdicts)).unwrap_or_default();
        verdicts.len() == 4 && verdicts.values().all(|v| v == "up")
    });
    assert!(all_up, "{tag}: after the heal every DC should be up: {verdicts:?}");
    verify_acks(&cluster.nodes[leader].endpoint(), &acked, tag);
    for i in dc_a.iter().copied().chain([learner]) {
        verify_acks(&cluster.nodes[i].endpoint(), &acked, tag);
    }

    // The learner's own state catches up with the last write.
    let last_ep = outside[0].clone();
    let last_rev = block_on_fresh(move || {
        Box::pin(async move {
            let mut c = connect(&last_ep).await;
            let r = c.put("drill/last", "done", None).await.expect("the last write");
            r.header().map_or(0, |h| h.revision())
        })
    });
    let learner_ep = cluster.nodes[learner].endpoint();
    let mut seen = String::new();
    let converged = poll_until(PROGRESS_DEADLINE, Duration::from_millis(50), || {
        let ep = learner_ep.clone();
        let r = block_on_fresh(move || {
            Box::pin(async move {
                let mut c = common::try_connect(&ep, OP_TIMEOUT).await.map_err(|e| e.to_string())?;
                let r = c
                    .get("drill/last", Some(GetOptions::new().with_serializable()))
                    .await
                    .map_err(|e| e.to_string())?;
                let value = r.kvs().first().map(|kv| kv.value().to_vec());
                Ok::<_, String>((value, r.header().map_or(0, |h| h.revision())))
            })
        });
        seen = format!("{r:?}");
        matches!(r, Ok((Some(v), rev)) if v == b"done" && rev >= last_rev)
    });
    assert!(converged, "{tag}: the learner's serializable read never saw revision {last_rev}: {seen}");

    // The watch on the learner saw exactly the writes that landed, in revision order.
    let (found, rev) = read_load(&cluster.nodes[leader].endpoint(), tag);
    let mut want: Vec<(String, i64)> = found.into_iter().map(|(k, (_, r))| (k, r)).collect();
    want.sort_by_key(|(_, r)| *r);
    let complete = poll_until(PROGRESS_DEADLINE, Duration::from_millis(50), || {
        let w = watched.lock().unwrap();
        w.error.is_some() || w.events.len() >= want.len()
    });
    let w = watched.lock().unwrap();
    assert_eq!(w.error, None, "{tag}: the watch on the learner failed");
    assert!(complete, "{tag}: the learner's watch saw {} of {} writes", w.events.len(), want.len());
    assert!(w.events.windows(2).all(|p| p[0].1 < p[1].1), "{tag}: watch events out of revision order");
    if w.events != want {
        let got: BTreeMap<&String, i64> = w.events.iter().map(|(k, r)| (k, *r)).collect();
        let missing: Vec<&(String, i64)> = want.iter().filter(|(k, r)| got.get(k) != Some(r)).take(5).collect();
        panic!("{tag}: the learner's watch differs from the store, e.g. {missing:?}");
    }
    drop(w);

    let hash = cluster.wait_hash_agreement(rev, PROGRESS_DEADLINE);
    eprintln!("{tag}: every member's HashKV agrees at revision {rev}: {hash:#x}");
}

#[test]
fn partitioning_the_preferred_dc_fails_over_to_the_next_and_heals_back_without_flapping() {
    drill(Outage::Partition);
}

#[test]
fn killing_the_preferred_dc_fails_over_to_the_next_and_restarting_it_brings_the_leader_back() {
    drill(Outage::Kill);
}

/// Each datacenter's verdict state.
fn states(
    verdicts: &std::collections::BTreeMap<String, meridian_server::admin::VerdictSummary>,
) -> std::collections::BTreeMap<String, String> {
    verdicts.iter().map(|(dc, v)| (dc.clone(), v.state.clone())).collect()
}
