//! One voter: writes are applied, survive restart, and revisions continue.

mod common;

use common::*;
use meridian_consensus::{Error, NodeStatus};
use meridian_kv::CommandResponse;
use meridian_types::{NodeId, Revision};

fn revision_of(resp: &CommandResponse) -> i64 {
    match resp {
        CommandResponse::Put(p) => p.header.as_ref().map(|h| h.revision).unwrap_or(0),
        _ => panic!("not a put"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_restart_and_revision_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_rev = 0;
    {
        let node = start_single(dir.path(), 0).await;
        assert_eq!(wait_leader(&node).await, NodeId(1));
        for i in 0..20 {
            let resp = node.propose(put(&format!("k{i}"), &format!("v{i}"))).await.unwrap().unwrap();
            let rev = revision_of(&resp);
            assert!(rev > last_rev, "revisions increase: {rev} after {last_rev}");
            last_rev = rev;
        }
        node.read_barrier().await.unwrap();
        assert_eq!(get(&node, "k7"), Some(b"v7".to_vec()));
        // The metrics behind `status()` can trail the barrier by an entry; wait until they show the read index.
        wait_applied(&node, node.read_index().await.unwrap()).await;
        let status: NodeStatus = node.status();
        assert!(status.is_leader);
        assert_eq!(status.leader, Some(NodeId(1)));
        assert_eq!(status.voters, vec![NodeId(1)]);
        assert!(status.applied >= 20);
        node.shutdown().await.unwrap();
        assert!(matches!(node.propose(put("x", "y")).await, Err(Error::Shutdown)));
    }
    let node = start_single(dir.path(), 0).await;
    wait_leader(&node).await;
    node.read_barrier().await.unwrap();
    for i in 0..20 {
        assert_eq!(get(&node, &format!("k{i}")), Some(format!("v{i}").into_bytes()), "k{i} lost on restart");
    }
    assert_eq!(node.kv().read().current_revision(), Revision(last_rev));
    let resp = node.propose(put("after", "restart")).await.unwrap().unwrap();
    assert_eq!(revision_of(&resp), last_rev + 1, "revision continues after restart");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_command_is_returned_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_single(dir.path(), 0).await;
    wait_leader(&node).await;
    // An empty key is a deterministic etcd rejection: it comes back inside Ok.
    let res = node.propose(put("", "v")).await.unwrap();
    assert!(matches!(res, Err(meridian_kv::Error::Etcd(meridian_types::EtcdError::EmptyKey))), "{res:?}");
    // The node keeps working.
    node.propose(put("a", "b")).await.unwrap().unwrap();
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_changes_reports_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_single(dir.path(), 0).await;
    let mut rx = node.leader_changes();
    let leader = tokio::time::timeout(WAIT, rx.wait_for(|l| l.is_some())).await.unwrap().unwrap();
    assert_eq!(*leader, Some(NodeId(1)));
    drop(leader);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_changes_reports_a_leader_elected_before_the_watch_began() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = start_single(dir.path(), 0).await;
        wait_leader(&node).await;
        node.shutdown().await.unwrap();
    }
    // Restarted, the only voter campaigns at once (a restarted member never resumes its old term) and
    // may lead before a given leader watch exists, so that watch never changes afterwards. Its first
    // value must still count as a change: the server's lease clock waits for one, and never started
    // on such a member.
    let node = start_single(dir.path(), 0).await;
    // Until its election ends the restored vote may already name it; wait for the Leader state itself.
    node.raft().wait(Some(WAIT)).metrics(|m| m.state.is_leader(), "leads").await.unwrap();
    let mut first = node.leader_changes();
    tokio::time::timeout(WAIT, first.wait_for(|l| *l == Some(NodeId(1)))).await.unwrap().unwrap();
    let mut rx = node.leader_changes();
    tokio::time::timeout(WAIT, rx.changed()).await.expect("the current leader counts as a change").unwrap();
    assert_eq!(*rx.borrow_and_update(), Some(NodeId(1)));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_for_another_term_is_refused_at_apply() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_single(dir.path(), 0).await;
    wait_leader(&node).await;
    let term = node.term();
    let mut mine = put("verdict", "for my term");
    mine.require_term = term;
    assert!(node.propose(mine).await.unwrap().is_ok(), "a decision for the current term applies");
    // A decision made for any other term (here the next; a deposed leader's is an earlier one, and term 0 means
    // no requirement) is refused, and changes nothing.
    let mut stale = put("verdict", "for another term");
    stale.require_term = term + 1;
    let refused = node.propose(stale).await.unwrap();
    assert!(matches!(refused, Err(meridian_kv::Error::Etcd(meridian_types::EtcdError::LeaderChanged))), "{refused:?}");
    node.read_barrier().await.unwrap();
    assert_eq!(get(&node, "verdict"), Some(b"for my term".to_vec()));
    node.shutdown().await.unwrap();
}
