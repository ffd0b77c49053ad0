//! Multi-process clusters: real `meridian server` processes formed from a topology file, driven by the
//! etcd-client crate and the real etcdctl through several endpoints.
//!
//! - writes through a follower and a learner reach everyone; the learner serves serializable reads, watches
//!   and lease keep-alives;
//! - kill -9 of the leader under load: a new leader takes writes, no acknowledged write is lost, and after the
//!   restart every member's HashKV agrees;
//! - kill of a whole DC: writes go on, the DC rejoins and converges;
//! - etcdctl with several endpoints;
//! - the leader killed again and again (LAN and WAN presets): writes resume each time and none is lost (how fast
//!   is measured by `bench/failover`, not here).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, LEADER_DEADLINE, canonical, three_dcs_and_a_learner};
use common::load::{Load, OP_TIMEOUT, PROGRESS_DEADLINE, verify_acks};
use common::{WatchProc, block_on_fresh, connect, etcdctl, poll_until, try_connect};
use etcd_client::{EventType, GetOptions, WatchOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn writes_through_a_follower_and_the_learner_are_visible_everywhere() {
    let cluster = Cluster::start(&three_dcs_and_a_learner(), "lan");
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let learner = cluster.index("l1");
    let follower_ep = cluster.nodes[follower].endpoint();
    let learner_ep = cluster.nodes[learner].endpoint();
    let all = cluster.live_endpoints();
    block_on_fresh(move || {
        Box::pin(async move {
            let mut lc = connect(&learner_ep).await;
            let mut events =
                lc.watch("a/", Some(WatchOptions::new().with_prefix())).await.expect("watch on the learner");
            let mut fc = connect(&follower_ep).await;
            fc.put("a/1", "via-follower", None).await.expect("put through a follower");
            lc.put("a/2", "via-learner", None).await.expect("put through the learner");

            for ep in &all {
                let mut c = connect(ep).await;
                let r = c.get("a/", Some(GetOptions::new().with_prefix())).await.expect("linearizable get");
                let got: Vec<(&[u8], &[u8])> = r.kvs().iter().map(|kv| (kv.key(), kv.value())).collect();
                assert_eq!(
                    got,
                    vec![(&b"a/1"[..], &b"via-follower"[..]), (&b"a/2"[..], &b"via-learner"[..])],
                    "linearizable read on {ep}"
                );
            }
            // After the linearizable read above the learner has applied both; its local state answers.
            let r = lc.get("a/", Some(GetOptions::new().with_prefix().with_serializable())).await.unwrap();
            assert_eq!(r.kvs().len(), 2, "serializable read on the learner");

            let mut seen = Vec::new();
            let end = Instant::now() + PROGRESS_DEADLINE;
            while seen.len() < 2 && Instant::now() < end {
                match tokio::time::timeout(OP_TIMEOUT, events.message()).await {
                    Ok(Ok(Some(resp))) => {
                        for e in resp.events() {
                            assert_eq!(e.event_type(), EventType::Put);
                            let kv = e.kv().expect("event kv");
                            seen.push((kv.key_str().unwrap().to_owned(), kv.value_str().unwrap().to_owned()));
                        }
                    }
                    Ok(other) => panic!("watch stream ended: {other:?}"),
                    Err(_) => {}
                }
            }
            assert_eq!(
                seen,
                vec![("a/1".to_owned(), "via-follower".to_owned()), ("a/2".to_owned(), "via-learner".to_owned())],
                "the learner's watch saw both writes in order"
            );

            // Leases: granted through the learner, kept alive through a follower, asked about on the learner.
            let lease = lc.lease_grant(30, None).await.expect("lease grant via learner").id();
            let (mut keeper, mut stream) = fc.lease_keep_alive(lease).await.expect("keep-alive stream");
            keeper.keep_alive().await.expect("send keep-alive");
            let ka = tokio::time::timeout(OP_TIMEOUT, stream.message()).await.expect("keep-alive reply in time");
            let ka = ka.expect("keep-alive reply").expect("keep-alive message");
            assert_eq!((ka.id(), ka.ttl()), (lease, 30), "renewed by the leader through a follower");
            let ttl = lc.lease_time_to_live(lease, None).await.expect("time to live via learner");
            assert!(ttl.ttl() > 0 && ttl.ttl() <= 30, "remaining ttl {}", ttl.ttl());

            let members = lc.member_list().await.expect("member list on the learner");
            let mut names: Vec<(String, bool)> =
                members.members().iter().map(|m| (m.name().to_owned(), m.is_learner())).collect();
            names.sort();
            let want = [("l1", true), ("v1", false), ("v2", false), ("v3", false)];
            assert_eq!(names, want.map(|(n, l)| (n.to_owned(), l)).to_vec(), "members from the Raft membership");
        })
    });
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write_and_members_converge() {
    let rt = runtime();
    let mut cluster = Cluster::start(&three_dcs_and_a_learner(), "lan");
    let old = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let load = Load::start(&rt, cluster.live_endpoints(), 6, "kill");
    load.wait_more(100, &cluster, "before the kill");

    cluster.kill9(old);
    let new = cluster.wait_agreed_leader(LEADER_DEADLINE);
    assert_ne!(new, old, "a new leader was elected");
    load.wait_more(100, &cluster, "after the kill");
    let (acked, failed) = load.finish(&rt);
    eprintln!("kill-leader: {} acknowledged writes, {failed} failed attempts", acked.len());

    cluster.spawn(old);
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let rev = verify_acks(&cluster.nodes[leader].endpoint(), &acked, "kill");
    cluster.wait_hash_agreement(rev, PROGRESS_DEADLINE);
    // The restarted member answers linearizable reads with everything, too.
    verify_acks(&cluster.nodes[old].endpoint(), &acked, "kill");
}

#[test]
fn losing_a_whole_dc_keeps_writes_going_and_it_converges_after_restart() {
    let rt = runtime();
    let mut cluster = Cluster::start(&canonical(), "lan");
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    // The leader's DC is the worst one to lose.
    let dc = cluster.nodes[leader].spec.dc.clone();
    let down: Vec<usize> = (0..cluster.nodes.len()).filter(|i| cluster.nodes[*i].spec.dc == dc).collect();
    let load = Load::start(&rt, cluster.live_endpoints(), 6, "dc");
    load.wait_more(100, &cluster, "before the outage");

    for i in &down {
        cluster.kill9(*i);
    }
    let new = cluster.wait_agreed_leader(LEADER_DEADLINE);
    assert_ne!(cluster.nodes[new].spec.dc, dc, "the leader moved out of the lost DC");
    load.wait_more(100, &cluster, &format!("with {dc} down"));
    let (acked, _) = load.finish(&rt);

    for i in &down {
        cluster.spawn(*i);
    }
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let rev = verify_acks(&cluster.nodes[leader].endpoint(), &acked, "dc");
    cluster.wait_hash_agreement(rev, PROGRESS_DEADLINE);
    for i in &down {
        verify_acks(&cluster.nodes[*i].endpoint(), &acked, "dc");
    }
}

#[test]
fn etcdctl_with_several_endpoints_puts_gets_and_watches() {
    let cluster = Cluster::start(&three_dcs_and_a_learner(), "lan");
    let endpoints = cluster.live_endpoints().join(",");
    let mut watch = WatchProc::spawn(&endpoints, &["watch", "multi/k"]);
    // etcdctl prints nothing when the watch is established; a write that the watch must report tells us.
    let seen_first = poll_until(PROGRESS_DEADLINE, Duration::from_millis(200), || {
        let out = etcdctl(&endpoints, &["put", "multi/k", "v0"], None);
        assert!(out.ok(), "put: {}", out.stderr);
        !watch.wait_lines(3, Duration::from_millis(500)).is_empty()
    });
    assert!(seen_first, "the watch never reported a put");

    let put = etcdctl(&endpoints, &["put", "multi/k", "v1"], None);
    assert!(put.ok() && put.stdout.trim() == "OK", "put: {} {}", put.stdout, put.stderr);
    let get = etcdctl(&endpoints, &["get", "multi/k"], None);
    assert_eq!(get.stdout, "multi/k\nv1\n", "get: {}", get.stderr);
    // Every endpoint alone answers the same (linearizable by default).
    for ep in cluster.live_endpoints() {
        assert_eq!(etcdctl(&ep, &["get", "multi/k", "--print-value-only"], None).stdout, "v1\n", "get on {ep}");
    }
    let mut lines = Vec::new();
    let ok = poll_until(PROGRESS_DEADLINE, Duration::from_millis(10), || {
        lines.extend(watch.wait_lines(1, Duration::from_millis(200)));
        lines.windows(3).any(|w| w == ["PUT", "multi/k", "v1"])
    });
    assert!(ok, "watch output lacks the v1 put: {lines:?}");
}

/// Kill the leader `runs` times. Each time a write through a surviving member must be acknowledged (within a
/// generous deadline: how fast is `bench/failover`'s business), then the killed member restarts; at the end every
/// acknowledged write reads back, through a member that was killed along the way.
fn kill_the_leader_repeatedly(preset: &str, runs: usize) {
    let mut cluster = Cluster::start(&three_dcs_and_a_learner(), preset);
    let mut killed = Vec::new();
    for run in 0..runs {
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let survivors: Vec<String> =
            (0..cluster.nodes.len()).filter(|i| *i != leader).map(|i| cluster.nodes[i].endpoint()).collect();
        cluster.kill9(leader);
        killed.push(leader);
        let (key, value) = (format!("killed/{preset}/{run}"), format!("run-{run}"));
        let wrote = block_on_fresh(move || {
            Box::pin(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut at = 0;
                while Instant::now() < deadline {
                    if let Ok(mut c) = try_connect(&survivors[at], Duration::from_secs(1)).await
                        && let Ok(Ok(_)) =
                            tokio::time::timeout(Duration::from_secs(1), c.put(key.clone(), value.clone(), None)).await
                    {
                        return true;
                    }
                    at = (at + 1) % survivors.len();
                    // Retry backoff against a member that is not reachable yet.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            })
        });
        assert!(wrote, "{preset} run {run}: no write succeeded after the kill\n{}", cluster.log_tails(40));
        cluster.spawn(leader);
    }
    cluster.wait_agreed_leader(LEADER_DEADLINE);
    let reader = cluster.nodes[killed[0]].endpoint();
    let prefix = format!("killed/{preset}/");
    let found: Vec<(String, String)> = block_on_fresh(move || {
        Box::pin(async move {
            let mut c = connect(&reader).await;
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await.expect("linearizable read");
            r.kvs().iter().map(|kv| (kv.key_str().unwrap().to_owned(), kv.value_str().unwrap().to_owned())).collect()
        })
    });
    let expected: Vec<(String, String)> =
        (0..runs).map(|run| (format!("killed/{preset}/{run}"), format!("run-{run}"))).collect();
    assert_eq!(found, expected, "{preset}: every acknowledged write is there");
}

#[test]
fn writes_resume_after_killing_the_leader_and_none_is_lost_lan_and_wan() {
    kill_the_leader_repeatedly("lan", 5);
    kill_the_leader_repeatedly("wan", 3);
}
