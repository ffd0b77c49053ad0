//! Acting on a dead leader (`RaftNode::release_dead_leader`, `RaftNode::campaign`), over the in-process
//! transport. Timing of the test config: heartbeat 50 ms, election timeout 200–400 ms, so a follower honours
//! its leader's lease for 400 ms after the last heartbeat. Timer elections are switched off on the survivors,
//! so the only campaign is the one each test starts.

mod common;

use std::time::Duration;

use common::*;
use meridian_consensus::{InProcessTransport, RaftNode, ReadPolicy};
use meridian_types::NodeId;

/// Long past the 400 ms lease: a campaign refused because of the lease would have been retried by now if
/// anything retried it.
const SETTLE: Duration = Duration::from_millis(1500);

struct Cluster {
    nodes: Vec<RaftNode>,
    net: InProcessTransport,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start(policy: ReadPolicy) -> Cluster {
    let (nodes, net, dirs) = start_three(policy).await;
    Cluster { nodes, net, _dirs: dirs }
}

/// Waits for a leader every member follows, stops it as a crash would, and returns it with the survivors
/// (timer elections off, so they only campaign when told to).
async fn kill_leader(c: &Cluster) -> (NodeId, Vec<RaftNode>) {
    let leader = wait_leader(&c.nodes[0]).await;
    for n in &c.nodes {
        n.raft().wait(Some(WAIT)).current_leader(leader.0, "all follow").await.unwrap();
    }
    let survivors: Vec<RaftNode> = c.nodes.iter().filter(|n| n.id() != leader).cloned().collect();
    for s in &survivors {
        s.raft().runtime_config().elect(false);
    }
    c.net.unregister(leader);
    c.nodes.iter().find(|n| n.id() == leader).unwrap().shutdown().await.unwrap();
    (leader, survivors)
}

async fn new_leader(node: &RaftNode, old: NodeId, within: Duration) -> Option<NodeId> {
    let m = node
        .raft()
        .wait(Some(within))
        .metrics(|m| m.current_leader.is_some_and(|l| l != old.0) && m.vote.committed, "a new leader")
        .await
        .ok()?;
    m.current_leader.map(NodeId)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_that_release_the_dead_leaders_lease_elect_at_once() {
    let c = start(ReadPolicy::ReadIndex).await;
    let (old, survivors) = kill_leader(&c).await;
    for s in &survivors {
        assert!(s.release_dead_leader(old).await.unwrap(), "{} releases the lease", s.id());
    }
    survivors[0].campaign().await.unwrap();
    let new = new_leader(&survivors[1], old, WAIT).await.expect("a successor is elected");
    assert_eq!(new, survivors[0].id(), "the member that campaigned wins");
    survivors[0].propose(put("after", "1")).await.unwrap().unwrap();
    // Releasing again names a leader nobody follows any more: nothing happens.
    assert!(!survivors[1].release_dead_leader(old).await.unwrap());
    for s in &survivors {
        s.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_release_a_campaign_inside_the_lease_is_refused() {
    let c = start(ReadPolicy::ReadIndex).await;
    let (old, survivors) = kill_leader(&c).await;
    // Only the campaigner lets go of the lease; the member whose vote it needs still honours it.
    assert!(survivors[0].release_dead_leader(old).await.unwrap());
    survivors[0].campaign().await.unwrap();
    assert_eq!(new_leader(&survivors[1], old, SETTLE).await, None, "the pre-vote must be refused");
    for s in &survivors {
        s.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lease_reads_the_lease_is_never_released() {
    let c = start(ReadPolicy::LeaseRead).await;
    let (old, survivors) = kill_leader(&c).await;
    for s in &survivors {
        assert!(!s.release_dead_leader(old).await.unwrap(), "lease reads rely on the lease");
    }
    survivors[0].campaign().await.unwrap();
    assert_eq!(new_leader(&survivors[1], old, SETTLE).await, None, "the lease still protects the old leader");
    for s in &survivors {
        s.shutdown().await.unwrap();
    }
}
