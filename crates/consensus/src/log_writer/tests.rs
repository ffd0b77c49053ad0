//! The writer answers once a transaction is durable, and refuses everything after a transaction
//! that failed once it was durable.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::testing::blank_ent;
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use super::*;
use crate::log_store::{LOG_FILE, LogStore};
use crate::test_disk::{HookedDisk, Hooks};
use crate::types::Entry;

fn ent(index: u64) -> Entry {
    blank_ent::<TypeConfig>(1, 1, index)
}

async fn append(store: &mut LogStore, index: u64) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(vec![ent(index)], IOFlushed::signal(tx)).await.map_err(io::Error::other)?;
    rx.await.map_err(io::Error::other)?
}

#[tokio::test]
async fn an_append_answered_as_durable_survives_a_later_failure_and_later_writes_are_refused() {
    let dir = TempDir::new().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    // The log's database file refuses writes once `fail` is set.
    let failing = fail.clone();
    let before_write =
        Arc::new(
            move || {
                if failing.load(Ordering::SeqCst) { Err(io::Error::other("injected write failure")) } else { Ok(()) }
            },
        );
    // A journal that checkpoints at every sync, so each transaction writes its pages into the
    // database file right after its callers heard "durable".
    let disk = HookedDisk::new(dir.path(), LOG_FILE, Hooks { before_write, ..Hooks::default() })
        .unwrap()
        .with_journal_budget(1);
    {
        let (mut store, closed) = LogStore::open_with_waiter(&disk).unwrap();
        append(&mut store, 1).await.unwrap();
        // Close the store so that no write of this transaction is left to fail below.
        drop(store);
        assert!(closed.wait(Duration::from_secs(30)).await, "the store never closed");
    }
    {
        let (mut store, closed) = LogStore::open_with_waiter(&disk).unwrap();
        // The journal syncs the next transaction, its callers hear "durable", and then the
        // checkpoint's pages fail to reach the database file.
        fail.store(true, Ordering::SeqCst);
        append(&mut store, 2).await.expect("answered at the journal's sync");
        // Refused for the earlier failure, not for a failure of its own (it would not get that far).
        let refused = append(&mut store, 3).await.unwrap_err();
        assert!(refused.to_string().contains("failed after it was made durable"), "{refused}");
        drop(store);
        assert!(closed.wait(Duration::from_secs(30)).await, "the store never closed");
    }
    fail.store(false, Ordering::SeqCst);
    // The next process replays the journal: the answered append is there, the refused one is not.
    let mut store = LogStore::open(dir.path()).unwrap();
    let indexes: Vec<u64> = store.try_get_log_entries(0..10).await.unwrap().iter().map(|e| e.log_id.index()).collect();
    assert_eq!(indexes, vec![1, 2]);
}

#[test]
fn a_spinning_wait_receives_what_is_queued_and_sees_the_queue_close() {
    let (tx, rx) = mpsc::channel();
    let sender = std::thread::spawn(move || {
        tx.send(WriteOp::Committed { bytes: vec![7] }).expect("receiver alive");
        tx
    });
    let got = next_op(&rx, IdleWait::Spin, Instant::now());
    assert!(matches!(got, Some(WriteOp::Committed { ref bytes }) if bytes == &[7]));
    drop(sender.join().expect("sender thread"));
    assert!(next_op(&rx, IdleWait::Spin, Instant::now()).is_none());
    // A window already over falls through to the blocking receive, which sees the close too.
    let long_ago = Instant::now().checked_sub(SPIN_WINDOW * 2).expect("uptime over two windows");
    assert!(next_op(&rx, IdleWait::Spin, long_ago).is_none());
    assert!(next_op(&rx, IdleWait::Block, Instant::now()).is_none());
}
