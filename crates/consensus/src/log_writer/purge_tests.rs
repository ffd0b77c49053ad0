//! A purge deletes the purged entries a chunk per transaction, never all at once, and a reopened
//! log goes on where it left off. Counts are taken after reopening: a caller hears back at the
//! journal's sync, before the transaction's commit is visible to readers, and closing the store
//! waits for the writer to finish.

use std::path::Path;

use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::testing::{blank_ent, log_id};
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use super::PURGE_CHUNK;
use crate::log_store::LogStore;
use crate::types::TypeConfig;

async fn append(store: &mut LogStore, indexes: std::ops::RangeInclusive<u64>) {
    let (tx, rx) = TypeConfig::oneshot();
    let entries: Vec<_> = indexes.map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect();
    store.append(entries, IOFlushed::signal(tx)).await.unwrap();
    rx.await.unwrap().unwrap();
}

/// Closes `store` once its writer is done and opens the log again.
fn reopen(store: LogStore, dir: &Path) -> LogStore {
    drop(store);
    LogStore::open(dir).unwrap()
}

#[tokio::test]
async fn purged_entries_go_a_chunk_per_transaction_and_a_reopened_log_finishes_the_job() {
    let dir = TempDir::new().unwrap();
    let upto = 3 * PURGE_CHUNK + 10;
    let mut last = upto + 20;
    let mut store = LogStore::open(dir.path()).unwrap();
    append(&mut store, 1..=last).await;
    store.purge(log_id::<TypeConfig>(1, 1, upto)).await.unwrap();
    let mut store = reopen(store, dir.path());
    // The purge's own transaction deleted one chunk; the log's state and reads ignore the rest.
    assert_eq!(store.entries_on_disk(1..=upto), upto - PURGE_CHUNK);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index()), Some(upto));
    assert_eq!(state.last_log_id.map(|l| l.index()), Some(last));
    let first = store.try_get_log_entries(0..u64::MAX).await.unwrap()[0].log_id.index();
    assert_eq!(first, upto + 1);

    // Each later transaction, in the reopened log too, deletes another chunk.
    last += 1;
    append(&mut store, last..=last).await;
    let mut store = reopen(store, dir.path());
    assert_eq!(store.entries_on_disk(1..=upto), upto - 2 * PURGE_CHUNK);
    for _ in 0..2 {
        last += 1;
        append(&mut store, last..=last).await;
    }
    let store = reopen(store, dir.path());
    assert_eq!(store.entries_on_disk(1..=upto), 0);
    assert_eq!(store.entries_on_disk(upto + 1..=last), last - upto, "an entry above the purge point went");
}

#[tokio::test]
async fn a_log_purged_past_its_last_entry_reopens_at_the_purge_point() {
    let dir = TempDir::new().unwrap();
    let upto = 2 * PURGE_CHUNK;
    let mut store = LogStore::open(dir.path()).unwrap();
    append(&mut store, 1..=PURGE_CHUNK + 5).await;
    // As after installing a snapshot ahead of the log: the purge point is past every entry.
    store.purge(log_id::<TypeConfig>(1, 1, upto)).await.unwrap();
    let mut store = reopen(store, dir.path());
    assert_eq!(store.entries_on_disk(1..=upto), 5, "not one chunk in the purge's transaction");
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index()), Some(upto), "a leftover purged entry counted as the last");
    assert!(store.try_get_log_entries(0..u64::MAX).await.unwrap().is_empty());
}
