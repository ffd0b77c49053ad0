//! A datacenter lost and healed, end to end, with real `meridian server` processes: the canonical layout
//! (voters 2+2+1 over dc-a, dc-b, dc-c, a learner in dc-d) with a failover group `db` over dc-a, dc-b, dc-c
//! (automatic failback after a short hold) whose webhook is a receiver in this test.
//!
//! - dc-a isolated through the emulation layer: its verdict becomes `down` (decided by the majority outside it),
//!   the group switches to dc-b with a larger token, and the hook is called for that token;
//! - healed: dc-a is `up` again after the stable window, the group fails back to dc-a once, with a larger token
//!   still, and nothing switches after that (no flapping);
//! - a cut dc-a ↔ dc-b link (dc-c sees both) never moves the group.
//!
//! Timings are printed (`--nocapture`); they are measurements, not assertions.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options, canonical};
use common::poll_until;
use common::webhook::Receiver;

/// Bound on anything to show on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// Failback hold (the topology's, and the group's): also the verdicts' stable window.
const HOLD_MS: u64 = 2000;

fn options() -> Options {
    Options {
        preset: "lan".into(),
        leader_preference: vec!["dc-a".into(), "dc-b".into()],
        failback_hold_ms: Some(HOLD_MS),
        fault_injection: true,
        extra_args: Vec::new(),
    }
}

fn group(receiver: &Receiver) -> String {
    format!(
        "\n[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\", \"dc-c\"]\nfailback_hold_ms = {HOLD_MS}\n\
         [[failover_groups.hooks]]\nwebhook = \"{}\"\ntimeout_ms = 1000\n",
        receiver.url()
    )
}

/// The group's active datacenter and token (the key's mod revision), read from member `i`.
fn active(cluster: &Cluster, i: usize) -> Option<(String, i64)> {
    let endpoint = cluster.nodes[i].endpoint();
    common::block_on_fresh(move || {
        Box::pin(async move {
            let mut client = common::try_connect(&endpoint, Duration::from_secs(2)).await.ok()?;
            let resp = client.get("/meridian/active/db", None).await.ok()?;
            let kv = resp.kvs().first()?;
            let record: serde_json::Value = serde_json::from_slice(kv.value()).ok()?;
            Some((record["dc"].as_str()?.to_owned(), kv.mod_revision()))
        })
    })
}

/// Each datacenter's verdict as member `i` has it.
fn verdicts(cluster: &Cluster, i: usize) -> BTreeMap<String, String> {
    cluster.admin_status(i).map(|r| r.verdicts.into_iter().map(|(dc, v)| (dc, v.state)).collect()).unwrap_or_default()
}

#[test]
fn an_isolated_datacenter_fails_the_group_over_once_and_back_once() {
    let receiver = Receiver::start();
    receiver.accept(true);
    let cluster = Cluster::start_with_topology(&canonical(), &options(), &group(&receiver));
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", DEADLINE);
    let outside = cluster.index("c1");
    let mut seen = None;
    assert!(
        poll_until(DEADLINE, Duration::from_millis(100), || {
            seen = active(&cluster, leader);
            seen.as_ref().is_some_and(|(dc, _)| dc == "dc-a") && verdicts(&cluster, leader).len() == 4
        }),
        "the group starts in dc-a: {seen:?}\n{}",
        cluster.log_tails(30)
    );
    let (_, t_a) = seen.clone().unwrap();
    assert!(poll_until(DEADLINE, Duration::from_millis(50), || receiver.calls().iter().any(|c| c.token == t_a)));

    // dc-a cut off from everyone.
    let t0 = Instant::now();
    cluster.put_faults_everywhere(r#"{"isolated_dcs": ["dc-a"]}"#);
    let mut down_at = None;
    let mut moved = None;
    assert!(
        poll_until(DEADLINE, Duration::from_millis(50), || {
            if down_at.is_none() && verdicts(&cluster, outside).get("dc-a").map(String::as_str) == Some("down") {
                down_at = Some(t0.elapsed());
            }
            moved = active(&cluster, outside).filter(|(dc, _)| dc == "dc-b");
            down_at.is_some() && moved.is_some()
        }),
        "dc-a down and the group in dc-b: {:?} {:?}\n{}",
        verdicts(&cluster, outside),
        active(&cluster, outside),
        cluster.log_tails(40)
    );
    let switched_at = t0.elapsed();
    let (_, t_b) = moved.unwrap();
    assert!(t_b > t_a, "the token grows: {t_b} > {t_a}");
    assert!(poll_until(DEADLINE, Duration::from_millis(20), || receiver.calls().iter().any(|c| c.token == t_b)));
    let hooked_at = t0.elapsed();
    eprintln!(
        "isolation: dc-a down after {:?}, group in dc-b after <= {switched_at:?}, hook called after <= {hooked_at:?}",
        down_at.unwrap_or_default()
    );

    // Healed: up after the stable window, then one failback.
    let t1 = Instant::now();
    cluster.put_faults_everywhere("{}");
    let mut back = None;
    assert!(
        poll_until(DEADLINE, Duration::from_millis(50), || {
            back = active(&cluster, outside).filter(|(dc, _)| dc == "dc-a");
            back.is_some()
        }),
        "the group never failed back: {:?} {:?}",
        active(&cluster, outside),
        verdicts(&cluster, outside)
    );
    let failback = t1.elapsed();
    let (_, t_back) = back.unwrap();
    assert!(t_back > t_b, "the token grows: {t_back} > {t_b}");
    assert!(failback >= Duration::from_millis(HOLD_MS), "failed back after {failback:?}, before the hold");
    eprintln!("heal: group back in dc-a after {failback:?}");
    assert!(poll_until(DEADLINE, Duration::from_millis(20), || receiver.calls().iter().any(|c| c.token == t_back)));

    // No flapping: nothing moves during three more holds, and every hook token was called in increasing order.
    // (A read may fail while Raft leadership itself fails back; only the answers count.)
    let settle = Instant::now();
    let mut answers = 0;
    while settle.elapsed() < Duration::from_millis(3 * HOLD_MS) {
        if let Some(now) = active(&cluster, outside) {
            assert_eq!(now, ("dc-a".to_owned(), t_back), "the group moved again");
            answers += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(answers > 0, "no read of the active record succeeded while watching for flaps");
    let tokens: Vec<i64> = receiver.calls().iter().filter(|c| c.accepted).map(|c| c.token).collect();
    let mut distinct = tokens.clone();
    distinct.dedup();
    let revisions: Vec<i64> = if distinct == [t_a, t_b, t_back] { Vec::new() } else { (1..=t_back).collect() };
    let history: Vec<String> = revisions
        .iter()
        .map(|t| {
            let rev = t.to_string();
            let args = ["get", "/meridian/", "--prefix", "--rev", rev.as_str(), "--print-value-only"];
            let out = common::etcdctl(&cluster.nodes[outside].endpoint(), &args, None).stdout;
            let short: Vec<String> = out
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .map(|v| {
                    if v["state"] == "down" {
                        v.to_string()
                    } else {
                        format!("{}={}{}", v["dc"], v["state"], v["group"])
                    }
                })
                .collect();
            format!("{t}: {}", short.join(" "))
        })
        .collect();
    assert_eq!(distinct, [t_a, t_b, t_back], "one acknowledged call per switch, tokens increasing: {history:#?}");
    assert!(all_up(&verdicts(&cluster, outside)), "{:?}", verdicts(&cluster, outside));
}

fn all_up(v: &BTreeMap<String, String>) -> bool {
    v.len() == 4 && v.values().all(|s| s == "up")
}

#[test]
fn a_cut_link_never_moves_the_group() {
    let receiver = Receiver::start();
    receiver.accept(true);
    let cluster = Cluster::start_with_topology(&canonical(), &options(), &group(&receiver));
    let (leader, _) = cluster.wait_admin_leader_in("dc-a", DEADLINE);
    let mut start = None;
    assert!(poll_until(DEADLINE, Duration::from_millis(100), || {
        start = active(&cluster, leader).filter(|(dc, _)| dc == "dc-a");
        start.is_some() && all_up(&verdicts(&cluster, leader))
    }));
    cluster.put_faults_everywhere(r#"{"links": [{"from": "dc-a", "to": "dc-b", "rtt_ms": 1, "blocked": true}]}"#);
    let c1 = cluster.index("c1");
    let partitioned = poll_until(DEADLINE, Duration::from_millis(100), || {
        verdicts(&cluster, c1).values().any(|s| s == "partitioned")
    });
    assert!(partitioned, "{:?}", verdicts(&cluster, c1));
    // Three detection windows and a hold later, the group has not moved.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(3 * 2000 + HOLD_MS) {
        if let Some(now) = active(&cluster, c1) {
            assert_eq!(Some(now), start, "a cut link moved the group");
        }
        assert!(!verdicts(&cluster, c1).values().any(|s| s == "down"), "{:?}", verdicts(&cluster, c1));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(receiver.calls().iter().filter(|c| c.accepted).count(), 1, "one hook call, for the first record");
}
