//! Datacenter verdicts with real `meridian server` processes in the canonical layout (voters 2+2+1 over dc-a,
//! dc-b, dc-c, a learner in dc-d), faults installed through the emulation layer (`PUT /faults` on every member):
//!
//! - a quiet cluster: every datacenter `up`, readable and watchable with etcdctl at `/meridian/dc/<dc>`, and a
//!   client's write there refused with a clear error;
//! - only the dc-a ↔ dc-b link cut, dc-c seeing both: `partitioned`, never `down` (a cut link is not a dead
//!   datacenter), and `meridian status` shows it; healed: `up` again.
//!
//! (A whole datacenter isolated, `down` and back to `up`, is drilled in `failover.rs`.)

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options, canonical};
use common::poll_until;
use etcd_client::WatchOptions;

/// Bound on any verdict to appear on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// The failback hold, which is also how long a datacenter must look `up` again before its verdict says so.
const HOLD_MS: u64 = 2000;
/// The lan preset's detection window: two election timeouts.
const DETECTION: Duration = Duration::from_millis(2000);

fn options() -> Options {
    Options {
        preset: "lan".into(),
        leader_preference: vec!["dc-a".into(), "dc-b".into()],
        failback_hold_ms: Some(HOLD_MS),
        fault_injection: true,
        extra_args: Vec::new(),
    }
}

/// Each datacenter's verdict as member `i` has it.
fn states(cluster: &Cluster, i: usize) -> BTreeMap<String, String> {
    cluster.admin_status(i).map(|r| r.verdicts.into_iter().map(|(dc, v)| (dc, v.state)).collect()).unwrap_or_default()
}

fn all_up(states: &BTreeMap<String, String>) -> bool {
    states.len() == 4 && states.values().all(|s| s == "up")
}

#[test]
fn verdicts_are_up_readable_and_watchable_and_reserved() {
    let cluster = Cluster::start_with(&canonical(), &options());
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", DEADLINE);
    let mut seen = BTreeMap::new();
    let up = poll_until(DEADLINE, Duration::from_millis(100), || {
        seen = states(&cluster, leader);
        all_up(&seen)
    });
    assert!(up, "a quiet cluster's verdicts: {seen:?}\n{}", cluster.log_tails(30));

    // Any etcd client reads them, from any member (here the far learner).
    let learner = cluster.index("sg1");
    let endpoint = cluster.nodes[learner].endpoint();
    let out = common::etcdctl(&endpoint, &["get", "--prefix", "/meridian/dc/", "--print-value-only"], None);
    let text = &out.stdout;
    assert!(out.code == 0, "{}", out.stderr);
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(records.len(), 4, "{text}");
    for r in &records {
        assert_eq!(r["state"], "up", "{r}");
        assert!(r["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{r}");
        assert!(r["term"].as_u64().is_some_and(|t| t >= 1), "{r}");
        assert!(r["evidence"].as_array().is_some_and(|e| !e.is_empty()), "{r}");
    }
    // A watch from revision 1 replays how each came to be.
    let events = common::block_on_fresh(move || {
        Box::pin(async move {
            let mut client = common::connect(&endpoint).await;
            let opts = WatchOptions::new().with_prefix().with_start_revision(1);
            let mut stream = client.watch("/meridian/dc/", Some(opts)).await.expect("watch");
            let mut events = Vec::new();
            while events.len() < 4 {
                let Ok(Ok(Some(resp))) = tokio::time::timeout(Duration::from_secs(10), stream.message()).await else {
                    break;
                };
                events.extend(
                    resp.events().iter().filter_map(|e| e.kv().map(|kv| kv.key_str().unwrap_or("").to_owned())),
                );
            }
            events
        })
    });
    assert!(events.len() >= 4 && events.iter().all(|k| k.starts_with("/meridian/dc/dc-")), "{events:?}");
    let endpoint = cluster.nodes[learner].endpoint();

    // A client cannot write there, whatever it asks.
    let out = common::etcdctl(&endpoint, &["put", "/meridian/dc/dc-a", r#"{"state":"down"}"#], None);
    let err = &out.stderr;
    assert!(out.code != 0, "a client wrote a verdict");
    assert!(err.contains("keys under /meridian/ are reserved for the server"), "{err}");
    let out = common::etcdctl(&endpoint, &["del", "--prefix", "/meridian/"], None);
    assert!(out.code != 0, "a client deleted the verdicts");
    assert!(all_up(&states(&cluster, leader)), "the verdicts are untouched");
}

#[test]
fn a_cut_link_between_two_datacenters_is_partitioned_never_down() {
    let cluster = Cluster::start_with(&canonical(), &options());
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", DEADLINE);
    let mut seen = BTreeMap::new();
    assert!(
        poll_until(DEADLINE, Duration::from_millis(100), || {
            seen = states(&cluster, leader);
            all_up(&seen)
        }),
        "before the cut: {seen:?}"
    );

    // dc-a and dc-b cannot reach each other; dc-c (and the learner) still reach both.
    let t0 = Instant::now();
    cluster.put_faults_everywhere(r#"{"links": [{"from": "dc-a", "to": "dc-b", "rtt_ms": 1, "blocked": true}]}"#);
    let mut downs = Vec::new();
    let mut partitioned_at = None;
    let observed = poll_until(DEADLINE, Duration::from_millis(100), || {
        // Whoever leads writes the verdicts; ask every voter, any member that answers.
        for i in 0..cluster.nodes.len() {
            let s = states(&cluster, i);
            downs.extend(s.iter().filter(|(_, st)| *st == "down").map(|(dc, _)| format!("{dc} on {i}")));
            if partitioned_at.is_none() && s.values().any(|st| st == "partitioned") {
                partitioned_at = Some(t0.elapsed());
                seen = s;
            }
        }
        // Keep watching for a false `down` over three detection windows after the partition shows.
        partitioned_at.is_some_and(|at| t0.elapsed() >= at + 3 * DETECTION)
    });
    assert!(
        observed,
        "no partitioned verdict after the cut: {:?}\n{}",
        states(&cluster, leader),
        cluster.log_tails(30)
    );
    assert!(downs.is_empty(), "a cut link declared a datacenter down: {downs:?}");
    eprintln!("cut link: partitioned after {:?}: {seen:?}", partitioned_at.unwrap_or_default());
    assert!(
        seen.get("dc-a").map(String::as_str) == Some("partitioned")
            || seen.get("dc-b").map(String::as_str) == Some("partitioned"),
        "{seen:?}"
    );
    assert_eq!(seen.get("dc-c").map(String::as_str), Some("up"), "{seen:?}");

    // `meridian status` shows the verdicts as a table, asking every member and preferring the leader's answer.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
    cmd.arg("status");
    for node in &cluster.nodes {
        cmd.args(["--admin", &format!("http://{}", node.admin_addr())]);
    }
    let out = cmd.output().expect("meridian status");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("partitioned"), "{table}");
    assert!(table.contains("VERDICT") && table.contains("LAG"), "{table}");
    let json = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["status", "-w", "json", "--admin", &format!("http://{}", cluster.nodes[leader].admin_addr())])
        .output()
        .expect("meridian status -w json");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("status JSON");
    assert!(report["verdicts"].as_object().is_some_and(|v| v.len() == 4), "{report}");

    // Healed: every datacenter is up again, after the stable window.
    cluster.put_faults_everywhere("{}");
    let healed = Instant::now();
    let back = poll_until(DEADLINE, Duration::from_millis(100), || {
        let leader = (0..cluster.nodes.len()).find(|i| cluster.admin_status(*i).is_ok_and(|r| r.is_leader));
        seen = leader.map(|l| states(&cluster, l)).unwrap_or_default();
        all_up(&seen)
    });
    assert!(back, "after the heal: {seen:?}");
    let took = healed.elapsed();
    eprintln!("cut link healed: all up after {took:?}");
    assert!(took >= Duration::from_millis(HOLD_MS), "up again before the stable window: {took:?}");
}
