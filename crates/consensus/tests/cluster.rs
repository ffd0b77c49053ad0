//! Three voters over the in-process transport: election, replication, convergence, redirects.

mod common;

use std::sync::Arc;

use common::*;
use futures::StreamExt;
use meridian_consensus::openraft::ServerState;
use meridian_consensus::{Error, InProcessTransport, NoopObserver, RaftNode};
use meridian_types::{NodeId, Revision};

async fn start_cluster(dirs: &[tempfile::TempDir], net: &InProcessTransport) -> Vec<RaftNode> {
    start_cluster_with(dirs, net, 0).await
}

async fn start_cluster_with(dirs: &[tempfile::TempDir], net: &InProcessTransport, snapshot_logs: u64) -> Vec<RaftNode> {
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let node = RaftNode::start(
            config(id, dir.path(), &[1, 2, 3], snapshot_logs),
            net.for_node(NodeId(id)),
            Arc::new(NoopObserver),
        )
        .await
        .unwrap();
        net.register(&node);
        nodes.push(node);
    }
    nodes
}

/// Wait until every node agrees on one leader, and that leader knows it leads.
async fn agreed_leader(nodes: &[RaftNode]) -> NodeId {
    let leader_id = wait_leader(&nodes[0]).await;
    for n in nodes {
        n.raft().wait(Some(WAIT)).current_leader(leader_id.0, "all agree on the leader").await.unwrap();
    }
    let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
    leader.raft().wait(Some(WAIT)).state(ServerState::Leader, "leader knows it").await.unwrap();
    leader_id
}

/// The agreed leader's id, the leader, and one follower.
async fn leader_and_follower(nodes: &[RaftNode]) -> (NodeId, &RaftNode, &RaftNode) {
    let leader_id = agreed_leader(nodes).await;
    let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
    let follower = nodes.iter().find(|n| n.id() != leader_id).unwrap();
    (leader_id, leader, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_converge() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let nodes = start_cluster(&dirs, &net).await;

    let (leader_id, leader, follower) = leader_and_follower(&nodes).await;

    for i in 0..25 {
        leader.propose(put(&format!("k{i}"), &format!("v{i}"))).await.unwrap().unwrap();
    }
    let applied = leader.read_index().await.unwrap();
    for n in &nodes {
        wait_applied(n, applied).await;
    }
    let hashes: Vec<_> = nodes.iter().map(|n| n.kv().read().hash_kv(Revision(0)).unwrap()).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "kv stores diverged: {hashes:?}");
    assert!(hashes[0].2 > Revision(1), "hash covers the writes");
    assert_eq!(get(follower, "k24"), Some(b"v24".to_vec()));

    // A follower refuses writes and linearizable reads, pointing at the leader.
    match follower.propose(put("x", "y")).await {
        Err(Error::NotLeader { leader }) => assert_eq!(leader, Some(leader_id)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    assert!(matches!(follower.read_barrier().await, Err(Error::NotLeader { leader: Some(l) }) if l == leader_id));

    let status = follower.status();
    assert_eq!(status.voters, vec![NodeId(1), NodeId(2), NodeId(3)]);
    assert!(status.learners.is_empty());
    assert_eq!(status.members.len(), 3);

    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_an_append_stream_ends_it_and_replication_goes_on() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let nodes = start_cluster(&dirs, &net).await;
    let (_, leader, follower) = leader_and_follower(&nodes).await;

    let garbage = futures::stream::iter([b"not an append request".to_vec(), vec![0xff; 64]]).boxed();
    let answers: Vec<_> = follower.serve_append_stream(garbage).unwrap().collect().await;
    assert!(answers.is_empty(), "the stream ends at the first undecodable request, unanswered");

    leader.propose(put("after", "garbage")).await.unwrap().unwrap();
    wait_applied(follower, leader.read_index().await.unwrap()).await;
    assert_eq!(get(follower, "after"), Some(b"garbage".to_vec()));
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_rejoins() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let nodes = start_cluster(&dirs, &net).await;
    let old = agreed_leader(&nodes).await;
    let leader = nodes.iter().find(|n| n.id() == old).unwrap();
    leader.propose(put("before", "1")).await.unwrap().unwrap();

    net.set_isolated(old, true);
    let others: Vec<_> = nodes.iter().filter(|n| n.id() != old).collect();
    let m = others[0]
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some_and(|l| l != old.0), "new leader")
        .await
        .unwrap();
    let new_id = NodeId(m.current_leader.unwrap());
    let new_leader = nodes.iter().find(|n| n.id() == new_id).unwrap();
    new_leader.propose(put("after", "2")).await.unwrap().unwrap();

    net.set_isolated(old, false);
    let applied = new_leader.read_index().await.unwrap();
    wait_applied(leader, applied).await;
    assert_eq!(get(leader, "after"), Some(b"2".to_vec()));
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

/// `lagging`, reconnected, reaches the leader's applied index through a snapshot, holding the last of the 60 keys
/// both tests write and the same store.
async fn assert_caught_up_through_a_snapshot(leader: &RaftNode, lagging: &RaftNode) {
    wait_applied(lagging, leader.read_index().await.unwrap()).await;
    assert!(lagging.status().snapshot_index.is_some(), "caught up through a snapshot");
    assert_eq!(get(lagging, "k59"), Some(b"v".to_vec()));
    let a = leader.kv().read().hash_kv(Revision(0)).unwrap();
    let b = lagging.kv().read().hash_kv(Revision(0)).unwrap();
    assert_eq!(a, b, "stores converge after snapshot install");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_through_a_snapshot() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let nodes = start_cluster_with(&dirs, &net, 10).await;
    let leader_id = agreed_leader(&nodes).await;
    let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
    let lagging = nodes.iter().find(|n| n.id() != leader_id).unwrap();

    net.set_isolated(lagging.id(), true);
    let behind = lagging.status().last_log_index;
    for i in 0..60 {
        leader.propose(put(&format!("k{i}"), "v")).await.unwrap().unwrap();
    }
    // The leader's log no longer holds what the lagging member is missing.
    leader
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.purged.is_some_and(|p| p.index() > behind + 1), "leader purged past the lagging member")
        .await
        .unwrap();

    net.set_isolated(lagging.id(), false);
    assert_caught_up_through_a_snapshot(leader, lagging).await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_sends_its_kv_store_as_the_snapshot() {
    // A member's snapshot is its kv store frozen in place, with no file: after a restart the member freezes
    // the store it reopened, and that is what a lagging member must get.
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let nodes = start_cluster_with(&dirs, &net, 10).await;
    let leader_id = agreed_leader(&nodes).await;
    let lagging_id = nodes.iter().find(|n| n.id() != leader_id).unwrap().id();
    net.set_isolated(lagging_id, true);
    let behind = nodes[lagging_id.0 as usize - 1].status().last_log_index;
    {
        let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
        for i in 0..60 {
            leader.propose(put(&format!("k{i}"), "v")).await.unwrap().unwrap();
        }
    }
    // Restart both up-to-date members once each has purged past the lagging one.
    let mut lagging = None;
    let mut restart = Vec::new();
    for (i, node) in nodes.into_iter().enumerate() {
        if node.id() == lagging_id {
            lagging = Some(node);
            continue;
        }
        node.raft()
            .wait(Some(WAIT))
            .metrics(|m| m.purged.is_some_and(|p| p.index() > behind + 1), "purged past the lagging member")
            .await
            .unwrap();
        node.shutdown().await.unwrap();
        restart.push((i, node.id()));
    }
    let mut up = Vec::new();
    for (i, id) in restart {
        assert!(!dirs[i].path().join(meridian_consensus::SNAPSHOT_FILE).exists(), "a build wrote a snapshot file");
        let node =
            RaftNode::start(config(id.0, dirs[i].path(), &[1, 2, 3], 10), net.for_node(id), Arc::new(NoopObserver))
                .await
                .unwrap();
        net.register(&node);
        up.push(node);
    }
    let lagging = lagging.unwrap();
    let leader_id = wait_leader(&up[0]).await;
    let leader = up.iter().find(|n| n.id() == leader_id).unwrap();
    leader.propose(put("after", "restart")).await.unwrap().unwrap();

    net.set_isolated(lagging_id, false);
    assert_caught_up_through_a_snapshot(leader, &lagging).await;
    assert_eq!(get(&lagging, "after"), Some(b"restart".to_vec()));
    for n in up.iter().chain([&lagging]) {
        n.shutdown().await.unwrap();
    }
}
