//! Snapshots: built after `snapshot_logs` entries, the log purged below them, restart recovers.

mod common;

use std::sync::Arc;

use common::*;
use meridian_consensus::SNAPSHOT_FILE;
use meridian_consensus::{InProcessTransport, NoopObserver, RaftNode, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_purges_log_and_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let writes = 60;
    {
        let node = start_single(dir.path(), 10).await;
        wait_leader(&node).await;
        for i in 0..writes {
            node.propose(put(&format!("k{i}"), &format!("v{i}"))).await.unwrap().unwrap();
        }
        let m = node
            .raft()
            .wait(Some(WAIT))
            .metrics(|m| m.snapshot.is_some_and(|s| s.index() >= 40) && m.purged.is_some(), "snapshot and purge")
            .await
            .unwrap();
        let snap = m.snapshot.unwrap().index();
        let purged = m.purged.unwrap().index();
        assert!(purged > 0 && purged <= snap, "purged {purged} snapshot {snap}");
        // A built snapshot is the kv store frozen in place; nothing is dumped until a peer needs it.
        assert!(!dir.path().join(SNAPSHOT_FILE).exists(), "a snapshot build wrote a dump");
        let status = node.status();
        assert_eq!(status.snapshot_index, Some(snap));
        node.shutdown().await.unwrap();
    }
    // The purged prefix is gone from the log itself.
    {
        let mut log = meridian_consensus::LogStore::open(dir.path()).unwrap();
        let state = meridian_consensus::openraft::storage::RaftLogStorage::get_log_state(&mut log).await.unwrap();
        let purged = state.last_purged_log_id.expect("log purged").index();
        let first = meridian_consensus::openraft::storage::RaftLogReader::try_get_log_entries(&mut log, 0..u64::MAX)
            .await
            .unwrap()
            .first()
            .map(|e| e.log_id.index());
        assert!(first.is_none_or(|f| f == purged + 1), "first entry {first:?} after purge point {purged}");
    }
    let node = start_single(dir.path(), 10).await;
    wait_leader(&node).await;
    node.read_barrier().await.unwrap();
    for i in 0..writes {
        assert_eq!(get(&node, &format!("k{i}")), Some(format!("v{i}").into_bytes()), "k{i} lost");
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_kv_store_is_lost_after_a_purge_refuses_to_start() {
    // The log below the snapshot is gone and the snapshot was the kv store itself: the member must
    // not come up serving a store that lacks those writes (it is replaced, as in etcd).
    let dir = tempfile::tempdir().unwrap();
    {
        let node = start_single(dir.path(), 10).await;
        wait_leader(&node).await;
        for i in 0..30 {
            node.propose(put(&format!("k{i}"), "v")).await.unwrap().unwrap();
        }
        node.raft().wait(Some(WAIT)).metrics(|m| m.purged.is_some(), "purge after snapshot").await.unwrap();
        node.shutdown().await.unwrap();
    }
    std::fs::remove_file(dir.path().join(meridian_consensus::STATE_FILE)).unwrap();
    let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new());
    let started = RaftNode::start(config(1, dir.path(), &[1], 10), transport, Arc::new(NoopObserver)).await;
    let err = started.err().expect("started without its kv store").to_string();
    assert!(err.contains("purged"), "unclear error: {err}");
}
