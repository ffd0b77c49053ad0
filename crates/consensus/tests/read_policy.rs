//! Linearizable reads stay linearizable across a leader transfer, with ReadIndex and with lease
//! reads (design §4): once leadership has moved and a newer value is committed, the old leader
//! must never confirm a read that would return the old value.

mod common;

use common::*;
use meridian_consensus::openraft::ServerState;
use meridian_consensus::{Error, ReadPolicy};

async fn transfer_then_read(policy: ReadPolicy) {
    let (nodes, _net, _dirs) = start_three(policy).await;
    let a_id = wait_leader(&nodes[0]).await;
    let a = nodes.iter().find(|n| n.id() == a_id).unwrap();
    a.raft().wait(Some(WAIT)).state(ServerState::Leader, "a leads").await.unwrap();
    let b = nodes.iter().find(|n| n.id() != a_id).unwrap();

    a.propose(put("k", "v1")).await.unwrap().unwrap();
    a.read_barrier().await.unwrap();
    assert_eq!(get(a, "k"), Some(b"v1".to_vec()), "{policy:?}: leader reads its own write");

    a.raft().trigger().transfer_leader(b.id().0).await.unwrap();
    b.raft().wait(Some(WAIT)).state(ServerState::Leader, "b leads after the transfer").await.unwrap();
    b.propose(put("k", "v2")).await.unwrap().unwrap();

    // Through the old leader: either it refuses (it is a follower now), or its barrier covers v2.
    match a.read_barrier().await {
        Ok(()) => assert_eq!(get(a, "k"), Some(b"v2".to_vec()), "{policy:?}: stale read through the old leader"),
        Err(Error::NotLeader { leader }) => assert_eq!(leader, Some(b.id()), "{policy:?}: leader hint"),
        Err(e) => panic!("{policy:?}: unexpected error from the old leader: {e:?}"),
    }
    // Through the new leader: v2.
    b.read_barrier().await.unwrap();
    assert_eq!(get(b, "k"), Some(b"v2".to_vec()), "{policy:?}: new leader reads the latest write");

    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_index_reads_stay_linearizable_across_leader_transfer() {
    transfer_then_read(ReadPolicy::ReadIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_stay_linearizable_across_leader_transfer() {
    transfer_then_read(ReadPolicy::LeaseRead).await;
}
