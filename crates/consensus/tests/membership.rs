//! Runtime membership over the in-process transport: learners that catch up (by snapshot) without
//! ever counting toward quorum, promotion refused until caught up, voters added and removed while
//! writes go on, requests made on followers forwarded to the leader, and stores that converge.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use meridian_consensus::openraft::ServerState;
use meridian_consensus::{Error, InProcessTransport, MemberRecord, MembershipError, NoopObserver, RaftNode};
use meridian_types::{NodeId, Revision};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// Upper bound on the background writer, so a broken cluster cannot make it loop forever.
const MAX_WRITES: usize = 5000;

async fn start(id: u64, dir: &Path, voters: &[u64], snapshot_logs: u64, net: &InProcessTransport) -> RaftNode {
    let node =
        RaftNode::start(config(id, dir, voters, snapshot_logs), net.for_node(NodeId(id)), Arc::new(NoopObserver))
            .await
            .unwrap();
    net.register(&node);
    node
}

/// A member record as MemberAdd creates it: only the peer URL is known.
fn added(id: u64) -> MemberRecord {
    MemberRecord { peer_url: format!("http://127.0.0.{id}:2380"), ..Default::default() }
}

async fn leader_of(nodes: &[RaftNode]) -> RaftNode {
    let id = wait_leader(&nodes[0]).await;
    let leader = nodes.iter().find(|n| n.id() == id).unwrap().clone();
    leader.raft().wait(Some(WAIT)).state(ServerState::Leader, "leader knows it").await.unwrap();
    leader
}

/// Writes `w{i}` through whichever member leads, until stopped; records every acknowledged key.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Writer {
    fn start(nodes: Vec<RaftNode>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            for i in 0..MAX_WRITES {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let key = format!("w{i}");
                let Some(leader) = nodes.iter().find(|n| n.status().is_leader) else {
                    tokio::task::yield_now().await;
                    continue;
                };
                if let Ok(Ok(Ok(_))) = tokio::time::timeout(WAIT, leader.propose(put(&key, "v"))).await {
                    a.lock().push(key);
                }
            }
        });
        Writer { stop, acked, task }
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        Arc::try_unwrap(self.acked).map(Mutex::into_inner).unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.acked.lock().len()
    }

    /// Wait until `n` more writes are acknowledged than now.
    async fn wait_more(&self, n: usize) {
        let target = self.count() + n;
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.count() < target {
            assert!(tokio::time::Instant::now() < deadline, "writes stalled at {}", self.count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every node reaches the leader's applied index; all stores hash equal at the same revision and
/// hold every acknowledged key.
async fn assert_converged(leader: &RaftNode, nodes: &[&RaftNode], acked: &[String]) {
    let applied = leader.read_index().await.unwrap();
    for n in nodes {
        wait_applied(n, applied).await;
    }
    let hashes: Vec<_> = nodes.iter().map(|n| n.kv().read().hash_kv(Revision(0)).unwrap()).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "stores diverged: {hashes:?}");
    for n in nodes {
        for key in acked {
            assert_eq!(get(n, key), Some(b"v".to_vec()), "acknowledged {key} missing on {}", n.id());
        }
    }
}

fn refused(r: Result<(), Error>) -> MembershipError {
    match r {
        Err(Error::Membership(e)) => e,
        other => panic!("expected a membership refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_catches_up_by_snapshot_never_votes_and_is_promoted_then_a_voter_leaves() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, dirs[id as usize - 1].path(), &[1, 2, 3], 10, &net).await);
    }
    let leader = leader_of(&nodes).await;
    // The learner process runs but cannot be reached yet: it must not hold anything up.
    let learner = start(4, dirs[3].path(), &[], 10, &net).await;
    net.set_isolated(NodeId(4), true);

    let writer = Writer::start(nodes.clone());
    writer.wait_more(5).await;
    leader.add_learner(NodeId(4), added(4)).await.unwrap();
    let st = leader.status();
    assert_eq!(st.learners, vec![NodeId(4)]);
    assert_eq!(st.voters, vec![NodeId(1), NodeId(2), NodeId(3)]);

    // etcd's refusals.
    assert_eq!(refused(leader.promote_learner(NodeId(4)).await), MembershipError::LearnerNotReady);
    assert_eq!(refused(leader.add_learner(NodeId(4), added(14)).await), MembershipError::MemberExists);
    assert_eq!(refused(leader.add_voter(NodeId(5), added(4)).await), MembershipError::PeerUrlExists);
    assert_eq!(refused(leader.promote_learner(NodeId(2)).await), MembershipError::MemberNotLearner);
    assert_eq!(refused(leader.remove_member(NodeId(99)).await), MembershipError::MemberNotFound);
    let bad = MemberRecord { peer_url: "127.0.0.5".into(), ..Default::default() };
    assert_eq!(refused(leader.add_learner(NodeId(5), bad).await), MembershipError::MemberBadUrls);

    // Let the leader purge past everything the learner could get from the log.
    writer.wait_more(40).await;
    leader
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.purged.is_some_and(|p| p.index() > 5), "leader purged its log")
        .await
        .unwrap();
    assert_eq!(refused(leader.promote_learner(NodeId(4)).await), MembershipError::LearnerNotReady);

    net.set_isolated(NodeId(4), false);
    wait_applied(&learner, leader.read_index().await.unwrap()).await;
    assert!(learner.status().snapshot_index.is_some(), "the learner caught up through a snapshot");
    assert_eq!(learner.status().learners, vec![NodeId(4)], "the learner knows the membership");
    let acked = writer.finish().await;
    // Let the metrics catch up with the last write, so the commit index read below cannot move on its own.
    wait_applied(&leader, leader.read_index().await.unwrap()).await;

    // Two of three voters gone: the leader and the learner alone are no quorum.
    let followers: Vec<_> = nodes.iter().filter(|n| n.id() != leader.id()).cloned().collect();
    for f in &followers {
        net.set_isolated(f.id(), true);
    }
    let committed = leader.status().committed;
    let stalled = tokio::time::timeout(Duration::from_secs(2), leader.propose(put("no-quorum", "v"))).await;
    assert!(!matches!(stalled, Ok(Ok(Ok(_)))), "a write committed without a voter quorum: {stalled:?}");
    assert_eq!(leader.status().committed, committed, "the learner's acknowledgement counted toward quorum");
    for f in &followers {
        net.set_isolated(f.id(), false);
    }

    // Caught up now: promotion goes through, even when asked on a follower (forwarded). Right after the heal the
    // isolated-leader watchdog still refuses until a quorum acknowledges the leader again (or a new one wins).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (leader, read_index) = loop {
        let candidate = leader_of(&nodes).await;
        if let Ok(index) = candidate.read_index().await {
            break (candidate, index);
        }
        assert!(tokio::time::Instant::now() < deadline, "the cluster never served a linearizable read after the heal");
        // Poll interval of the condition above, not a stand-in for synchronisation.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_applied(&learner, read_index).await;
    // The readiness check reads the leader's replication progress, which a leader elected at the heal only has
    // once the learner has acknowledged it.
    leader
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&4).cloned().flatten())
                    .is_some_and(|l| l.index() >= read_index)
            },
            "the leader saw the learner catch up",
        )
        .await
        .unwrap();
    let follower = &followers[0];
    follower.promote_learner(NodeId(4)).await.unwrap();
    let leader = leader_of(&nodes).await;
    let st = leader.status();
    assert_eq!(st.voters, vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
    assert!(st.learners.is_empty());

    // Remove a voter that is not the leader while writes go on; the rest keeps committing.
    nodes.push(learner.clone());
    let writer = Writer::start(nodes.clone());
    writer.wait_more(5).await;
    let gone = nodes.iter().find(|n| n.id() != leader.id() && n.id() != NodeId(4)).unwrap().clone();
    leader.remove_member(gone.id()).await.unwrap();
    writer.wait_more(20).await;
    let more = writer.finish().await;
    let leader = leader_of(&nodes).await;
    let voters: BTreeSet<_> = leader.status().voters.into_iter().collect();
    assert_eq!(voters.len(), 3);
    assert!(!voters.contains(&gone.id()) && voters.contains(&NodeId(4)));
    assert!(!leader.status().members.contains_key(&gone.id()), "removed member keeps no record");

    let remaining: Vec<&RaftNode> = nodes.iter().filter(|n| n.id() != gone.id()).collect();
    let all: Vec<String> = acked.into_iter().chain(more).collect();
    assert!(all.len() >= 70, "the writer made progress: {}", all.len());
    assert_converged(&leader, &remaining, &all).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voter_added_before_it_runs_then_joins_publishes_and_is_updated() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, dirs[id as usize - 1].path(), &[1, 2, 3], 0, &net).await);
    }
    let leader = leader_of(&nodes).await;
    let writer = Writer::start(nodes.clone());
    writer.wait_more(5).await;

    // etcd's MemberAdd without isLearner: a voter at once, though its process is not running.
    let follower = nodes.iter().find(|n| n.id() != leader.id()).unwrap().clone();
    follower.add_voter(NodeId(4), added(4)).await.unwrap();
    leader
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_joint_config().len() == 1, "voter change completed")
        .await
        .unwrap();
    assert_eq!(leader.status().voters, vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
    // Three of four voters are a quorum: writes go on without the new member.
    writer.wait_more(10).await;

    let joined = start(4, dirs[3].path(), &[], 0, &net).await;
    nodes.push(joined.clone());
    let record = MemberRecord { name: "m4".into(), dc: "dc-c".into(), zone: "z9".into(), ..added(4) };
    let published =
        MemberRecord { peer_url: "http://ignored:1".into(), client_url: "http://127.0.0.4:2379".into(), ..record };
    // It learns the membership from the leader, then publishes its own description through it.
    joined
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_node(&4).is_some(), "joined learns the membership")
        .await
        .unwrap();
    joined.publish_self(published.clone()).await.unwrap();
    let want = MemberRecord { peer_url: added(4).peer_url, ..published };
    assert_eq!(leader.status().members.get(&NodeId(4)), Some(&want));

    leader.update_member(NodeId(4), "http://127.0.0.44:2380".into()).await.unwrap();
    assert_eq!(leader.status().members[&NodeId(4)].peer_url, "http://127.0.0.44:2380");
    assert_eq!(leader.status().members[&NodeId(4)].name, "m4", "update changes only the peer URL");
    // A learner that never runs holds a peer URL nobody else may take; removing it frees it.
    leader.add_learner(NodeId(5), added(5)).await.unwrap();
    let e = refused(leader.update_member(NodeId(4), added(5).peer_url).await);
    assert_eq!(e, MembershipError::PeerUrlExists);
    leader.remove_member(NodeId(5)).await.unwrap();
    assert!(!leader.status().members.contains_key(&NodeId(5)));
    leader.update_member(NodeId(4), added(5).peer_url).await.unwrap();

    let acked = writer.finish().await;
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    assert_converged(&leader, &refs, &acked).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_hands_over_to_the_remaining_voters() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, dirs[id as usize - 1].path(), &[1, 2, 3], 0, &net).await);
    }
    let old = leader_of(&nodes).await;
    let writer = Writer::start(nodes.clone());
    writer.wait_more(5).await;

    old.remove_member(old.id()).await.unwrap();
    // openraft steps a leader down once the membership without it is committed.
    let rest: Vec<RaftNode> = nodes.iter().filter(|n| n.id() != old.id()).cloned().collect();
    rest[0]
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some_and(|l| l != old.id().0), "a leader among the remaining voters")
        .await
        .unwrap();
    let leader = leader_of(&rest).await;
    assert_eq!(leader.status().voters.len(), 2);
    assert!(!leader.status().voters.contains(&old.id()));
    writer.wait_more(10).await;
    let acked = writer.finish().await;
    let refs: Vec<&RaftNode> = rest.iter().collect();
    assert_converged(&leader, &refs, &acked).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
