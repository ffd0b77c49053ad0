//! The redb Raft log: reads after append, truncation, purge, vote durability, group commit, and
//! openraft's own storage conformance suite.

use std::sync::Arc;

use meridian_consensus::openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage, RaftStateMachine};
use meridian_consensus::openraft::testing::log::{StoreBuilder, Suite};
use meridian_consensus::openraft::testing::{blank_ent, log_id};
use meridian_consensus::openraft::type_config::TypeConfigExt;
use meridian_consensus::openraft::{StorageError, Vote};
use meridian_consensus::{Entry, LogStore, NoopObserver, RedbBackend, StateMachine, TypeConfig};
use parking_lot::RwLock;
use tempfile::TempDir;

fn ent(term: u64, index: u64) -> Entry {
    blank_ent::<TypeConfig>(term, 1, index)
}

/// Append and wait until the entries are durable.
async fn append_durable(store: &mut LogStore, entries: Vec<Entry>) {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await.unwrap();
    rx.await.unwrap().unwrap();
}

fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.log_id.index()).collect()
}

#[tokio::test]
async fn appended_entries_are_readable_at_once_and_after_reopen() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        let (tx, rx) = TypeConfig::oneshot();
        store.append((1..=5).map(|i| ent(1, i)).collect::<Vec<_>>(), IOFlushed::signal(tx)).await.unwrap();
        // Readable as soon as append returns, flushed or not.
        let mut reader = store.get_log_reader().await;
        assert_eq!(indexes(&reader.try_get_log_entries(1..=5).await.unwrap()), vec![1, 2, 3, 4, 5]);
        rx.await.unwrap().unwrap();
        assert_eq!(indexes(&reader.try_get_log_entries(2..4).await.unwrap()), vec![2, 3]);
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 5)));
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(indexes(&store.try_get_log_entries(0..100).await.unwrap()), vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_log_open_in_one_place_is_refused_in_another() {
    let dir = TempDir::new().unwrap();
    let mut first = LogStore::open(dir.path()).unwrap();
    append_durable(&mut first, vec![ent(1, 1)]).await;
    // The journal is replayed on open, so a second opener must never get that far.
    let err = LogStore::open(dir.path()).err().expect("a second open must fail");
    assert!(err.to_string().contains("raft-log.journal is in use by another process"), "{err}");
    drop(first);
    let mut again = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&again.try_get_log_entries(0..10).await.unwrap()), vec![1]);
}

#[tokio::test]
async fn truncate_after_removes_the_tail_durably() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        append_durable(&mut store, (1..=10).map(|i| ent(1, i)).collect()).await;
        store.truncate_after(Some(log_id::<TypeConfig>(1, 1, 5))).await.unwrap();
        assert_eq!(indexes(&store.try_get_log_entries(0..100).await.unwrap()), vec![1, 2, 3, 4, 5]);
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id::<TypeConfig>(1, 1, 5)));
        // A new leader's entries replace the truncated ones.
        append_durable(&mut store, vec![ent(2, 6)]).await;
        assert_eq!(store.try_get_log_entries(6..7).await.unwrap()[0].log_id, log_id::<TypeConfig>(2, 1, 6));
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    let all = store.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(indexes(&all), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(all[5].log_id, log_id::<TypeConfig>(2, 1, 6));
}

#[tokio::test]
async fn purge_removes_the_head_and_records_the_purge_point() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        append_durable(&mut store, (1..=10).map(|i| ent(1, i)).collect()).await;
        store.purge(log_id::<TypeConfig>(1, 1, 3)).await.unwrap();
        assert_eq!(indexes(&store.try_get_log_entries(0..100).await.unwrap()), (4..=10).collect::<Vec<_>>());
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id::<TypeConfig>(1, 1, 3)));
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 10)));
    assert_eq!(indexes(&store.try_get_log_entries(0..100).await.unwrap()), (4..=10).collect::<Vec<_>>());

    // Purging everything leaves last_log_id at the purge point.
    store.purge(log_id::<TypeConfig>(1, 1, 10)).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 10)));
    assert!(store.try_get_log_entries(0..100).await.unwrap().is_empty());
}

#[tokio::test]
async fn vote_and_committed_survive_reopen() {
    let dir = TempDir::new().unwrap();
    let vote = Vote::new(7, 2);
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        append_durable(&mut store, vec![ent(1, 1)]).await;
        store.save_vote(&vote).await.unwrap();
        store.save_committed(Some(log_id::<TypeConfig>(1, 1, 1))).await.unwrap();
        // committed rides with the next sync: force one.
        append_durable(&mut store, vec![ent(1, 2)]).await;
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id::<TypeConfig>(1, 1, 1)));
}

#[tokio::test]
async fn committed_id_alone_costs_no_transaction_and_is_written_on_close() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = LogStore::open(dir.path()).unwrap();
        append_durable(&mut store, vec![ent(1, 1)]).await;
        let before = store.write_transactions();
        store.save_committed(Some(log_id::<TypeConfig>(1, 1, 1))).await.unwrap();
        append_durable(&mut store, vec![ent(1, 2)]).await;
        assert_eq!(store.write_transactions() - before, 1, "the committed id rides with the next append");
        store.save_committed(Some(log_id::<TypeConfig>(1, 1, 2))).await.unwrap();
    }
    let mut store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id::<TypeConfig>(1, 1, 2)));
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    const N: u64 = 200;
    let dir = TempDir::new().unwrap();
    let mut store = LogStore::open(dir.path()).unwrap();
    let before = store.write_transactions();
    let mut waits = Vec::new();
    for i in 1..=N {
        let (tx, rx) = TypeConfig::oneshot();
        store.append(vec![ent(1, i)], IOFlushed::signal(tx)).await.unwrap();
        waits.push(rx);
    }
    for rx in waits {
        rx.await.unwrap().unwrap();
    }
    let txns = store.write_transactions() - before;
    assert!(txns < N, "{N} appends took {txns} transactions: no group commit");
    assert_eq!(store.try_get_log_entries(0..1000).await.unwrap().len() as u64, N);
}

/// Builds a fresh log store and state machine in a temp dir for openraft's conformance suite.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        let backend = RedbBackend::open(dir.path()).unwrap();
        let kv = Arc::new(RwLock::new(meridian_kv::KvStore::open(backend).unwrap()));
        let sm = StateMachine::new(kv, meridian_consensus::OsDisk::shared(dir.path()).unwrap(), Arc::new(NoopObserver));
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_openraft_storage_suite() {
    Suite::test_all(Builder).await.unwrap();
}

#[tokio::test]
async fn state_machine_reports_nothing_applied_when_new() {
    let (_dir, _log, mut sm) = Builder.build().await.unwrap();
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, None);
    assert_eq!(membership.log_id(), &None);
}
