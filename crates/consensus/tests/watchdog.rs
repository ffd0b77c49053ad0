//! The isolated-leader watchdog and pre-vote, over the in-process transport (design §5).
//! Timing of the test config: heartbeat 50 ms, election timeout 200–400 ms, so the watchdog trips
//! after 400 ms without a quorum acknowledgement.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use meridian_consensus::openraft::ServerState;
use meridian_consensus::{Error, InProcessTransport, MemberRecord, NoopObserver, RaftNode, Transport};
use meridian_types::NodeId;

/// Counts every message a member tries to send, delivered or not. An isolated follower only sends
/// when it campaigns (pre-vote or vote), so this counts its election attempts.
struct Counting {
    inner: Arc<dyn Transport>,
    sent: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl Transport for Counting {
    async fn send(
        &self,
        target: NodeId,
        member: &MemberRecord,
        payload: Vec<u8>,
    ) -> meridian_consensus::Result<Vec<u8>> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.send(target, member, payload).await
    }
}

struct Cluster {
    nodes: Vec<RaftNode>,
    sent: Vec<Arc<AtomicU64>>,
    net: InProcessTransport,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let net = InProcessTransport::new();
        let mut nodes = Vec::new();
        let mut sent = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let id = i as u64 + 1;
            let counter = Arc::new(AtomicU64::new(0));
            let transport = Arc::new(Counting { inner: net.for_node(NodeId(id)), sent: counter.clone() });
            let node = RaftNode::start(config(id, dir.path(), &[1, 2, 3], 0), transport, Arc::new(NoopObserver))
                .await
                .unwrap();
            net.register(&node);
            nodes.push(node);
            sent.push(counter);
        }
        Cluster { nodes, sent, net, _dirs: dirs }
    }

    fn node(&self, id: NodeId) -> &RaftNode {
        self.nodes.iter().find(|n| n.id() == id).unwrap()
    }

    /// Wait until every node agrees on one leader that knows it leads.
    async fn agreed_leader(&self) -> NodeId {
        let leader = wait_leader(&self.nodes[0]).await;
        for n in &self.nodes {
            n.raft().wait(Some(WAIT)).current_leader(leader.0, "all agree on the leader").await.unwrap();
        }
        self.node(leader).raft().wait(Some(WAIT)).state(ServerState::Leader, "leader knows it").await.unwrap();
        leader
    }

    async fn shutdown(self) {
        for n in &self.nodes {
            n.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_refuses_within_an_election_timeout_and_steps_down_on_heal() {
    let c = Cluster::start().await;
    let old = c.agreed_leader().await;
    let leader = c.node(old);
    leader.propose(put("before", "1")).await.unwrap().unwrap();

    c.net.set_isolated(old, true);
    // Proposed while the leader still believes in its lease: the entry is appended but can never
    // commit. Without the watchdog this call would hang until the partition heals.
    let started = Instant::now();
    let in_flight = tokio::time::timeout(WAIT, leader.propose(put("during", "x"))).await;
    let took = started.elapsed();
    match in_flight {
        Ok(Err(Error::Unavailable(_) | Error::NoLeader)) => {}
        Ok(other) => panic!("isolated leader answered a write with {other:?}"),
        Err(_) => panic!("proposal on an isolated leader hung for {WAIT:?}"),
    }
    eprintln!("isolated leader refused an in-flight write after {took:?}");
    assert!(took < Duration::from_secs(3), "refusal took {took:?}, expected about one election timeout (400 ms)");

    // From now on, requests are refused up front, without proposing.
    assert_eq!(leader.propose(put("after-isolation", "x")).await.unwrap_err(), Error::NoLeader);
    assert_eq!(leader.read_barrier().await.unwrap_err(), Error::NoLeader);

    // The majority elects a new leader and takes writes.
    let others: Vec<_> = c.nodes.iter().filter(|n| n.id() != old).collect();
    let m = others[0]
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some_and(|l| l != old.0), "new leader on the majority side")
        .await
        .unwrap();
    let new = NodeId(m.current_leader.unwrap());
    c.node(new).propose(put("majority", "2")).await.unwrap().unwrap();

    // Heal: the old leader learns of the new term and follows; exactly one leader remains.
    c.net.set_isolated(old, false);
    leader.raft().wait(Some(WAIT)).current_leader(new.0, "old leader follows the new one").await.unwrap();
    leader.raft().wait(Some(WAIT)).state(ServerState::Follower, "old leader stepped down").await.unwrap();
    let leaders: Vec<_> = c.nodes.iter().filter(|n| n.status().is_leader).map(|n| n.id()).collect();
    assert_eq!(leaders, vec![new]);
    assert!(matches!(leader.propose(put("x", "y")).await, Err(Error::NotLeader { leader: Some(l) }) if l == new));
    wait_applied(leader, c.node(new).read_index().await.unwrap()).await;
    assert_eq!(get(leader, "majority"), Some(b"2".to_vec()));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoining_member_does_not_disrupt_the_leader() {
    let c = Cluster::start().await;
    let leader_id = c.agreed_leader().await;
    let leader = c.node(leader_id);
    leader.propose(put("a", "1")).await.unwrap().unwrap();
    let term = leader.status().term;
    let follower = c.nodes.iter().find(|n| n.id() != leader_id).unwrap();
    let idx = (follower.id().0 - 1) as usize;

    // Cut the follower off until it has campaigned several times (each campaign sends at least
    // one message per peer; a follower sends nothing else).
    let before = c.sent[idx].load(Ordering::SeqCst);
    c.net.set_isolated(follower.id(), true);
    let deadline = Instant::now() + WAIT;
    while c.sent[idx].load(Ordering::SeqCst) < before + 6 {
        assert!(Instant::now() < deadline, "isolated follower never campaigned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Pre-vote: failed campaigns do not raise its term.
    assert_eq!(follower.status().term, term, "isolated follower bumped its term despite pre-vote");
    leader.propose(put("b", "2")).await.unwrap().unwrap();

    // Heal and let it catch up.
    c.net.set_isolated(follower.id(), false);
    let applied = leader.read_index().await.unwrap();
    wait_applied(follower, applied).await;
    assert_eq!(get(follower, "b"), Some(b"2".to_vec()));

    // The leader and the term are unchanged everywhere, and the leader still takes writes.
    for n in &c.nodes {
        let s = n.status();
        assert_eq!((s.leader, s.term), (Some(leader_id), term), "member {} after heal", n.id());
    }
    leader.propose(put("c", "3")).await.unwrap().unwrap();
    assert_eq!(leader.status().term, term);
    assert_eq!(leader.term(), term, "term() reads the same term as status()");
    c.shutdown().await;
}
