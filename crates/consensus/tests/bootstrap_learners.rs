//! A new cluster whose topology has learners: the first leader adds them as learners (never voters), and
//! they receive the log.

mod common;

use std::sync::Arc;

use common::*;
use meridian_consensus::{InProcessTransport, NoopObserver, RaftNode};
use meridian_types::NodeId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_learners_are_added_as_learners_and_replicated_to() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = config(id, dir.path(), &[1, 2, 3], 0);
        cfg.bootstrap_learners = [(NodeId(4), member(4))].into_iter().collect();
        let node = RaftNode::start(cfg, net.for_node(NodeId(id)), Arc::new(NoopObserver)).await.unwrap();
        net.register(&node);
        nodes.push(node);
    }
    let leader_id = wait_leader(&nodes[0]).await;
    let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
    leader
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().learner_ids().any(|l| l == 4), "learner added")
        .await
        .unwrap();
    leader.propose(put("k", "v")).await.unwrap().unwrap();
    let learner = &nodes[3];
    wait_applied(learner, leader.read_index().await.unwrap()).await;
    assert_eq!(get(learner, "k"), Some(b"v".to_vec()));
    let status = learner.status();
    assert_eq!(status.voters, vec![NodeId(1), NodeId(2), NodeId(3)], "the learner never became a voter");
    assert_eq!(status.learners, vec![NodeId(4)]);
    assert_ne!(status.leader, Some(NodeId(4)));

    // ReadIndex served by the leader for a read on the learner.
    let index = leader.read_index().await.unwrap();
    learner.wait_applied(index, WAIT).await.unwrap();
    assert!(
        matches!(learner.read_index().await, Err(meridian_consensus::Error::NotLeader { leader: Some(l) }) if l == leader_id)
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}
