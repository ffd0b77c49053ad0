//! Syncing the kv store never stalls the apply path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use openraft::testing::blank_ent;
use tempfile::TempDir;

use super::*;
use crate::fsutil::DropWaiter;
use crate::kv_backend::STATE_FILE;
use crate::observer::NoopObserver;
use crate::test_disk::{HookedDisk, Hooks};

/// Applies blank entries `from..from + n`, in batches of one commit's worth.
async fn apply_blank(sm: &mut StateMachine, from: u64, n: u64) {
    let mut index = from;
    while index < from + n {
        let end = (index + COMMIT_EVERY_ENTRIES).min(from + n);
        let batch: Vec<_> = (index..end).map(|i| Ok((blank_ent::<TypeConfig>(1, 1, i), None))).collect();
        sm.apply(futures::stream::iter(batch)).await.expect("apply");
        index = end;
    }
}

/// Holds the kv store's next sync at `before_sync` until released, and says when it got there.
struct HeldSync {
    armed: Arc<AtomicBool>,
    reached: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

fn held_sync() -> (Hooks, HeldSync) {
    let armed = Arc::new(AtomicBool::new(false));
    let (reached_tx, reached) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (reached_tx, release_rx) = (Mutex::new(reached_tx), Mutex::new(release_rx));
    let holding = armed.clone();
    let before_sync: crate::test_disk::Hook = Arc::new(move || {
        if holding.swap(false, Ordering::SeqCst) {
            let _ = reached_tx.lock().send(());
            let _ = release_rx.lock().recv();
        }
        Ok(())
    });
    (Hooks { before_sync, ..Hooks::default() }, HeldSync { armed, reached, release })
}

/// A state machine over a fresh directory whose periodic sync has started and is held in
/// `fdatasync`, with the waiter for the machine being gone.
async fn machine_with_a_held_sync(dir: &TempDir) -> (HeldSync, StateMachine, DropWaiter) {
    let (hooks, held) = held_sync();
    let disk: Arc<dyn Disk> = Arc::new(HookedDisk::new(dir.path(), STATE_FILE, hooks).unwrap());
    let kv: SharedKv = Arc::new(RwLock::new(KvStore::open(RedbBackend::open_on(disk.clone()).unwrap()).unwrap()));
    let (mut sm, gone) = StateMachine::with_waiter(kv, disk, Arc::new(NoopObserver));
    // Up to just before the periodic sync, then the entries that start it.
    apply_blank(&mut sm, 1, SYNC_EVERY_ENTRIES - COMMIT_EVERY_ENTRIES).await;
    held.armed.store(true, Ordering::SeqCst);
    apply_blank(&mut sm, SYNC_EVERY_ENTRIES - COMMIT_EVERY_ENTRIES + 1, COMMIT_EVERY_ENTRIES).await;
    held.reached.recv_timeout(Duration::from_secs(60)).expect("the periodic sync never started");
    (held, sm, gone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_go_on_while_the_periodic_sync_of_the_kv_store_runs() {
    let dir = TempDir::new().unwrap();
    let (held, mut sm, _gone) = machine_with_a_held_sync(&dir).await;
    // The sync holds redb's writer now. Applying two commits' worth of entries on another thread must
    // finish anyway: an apply that committed would wait for the sync, which waits for us.
    let (done_tx, done) = mpsc::channel();
    let applier = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(apply_blank(&mut sm, SYNC_EVERY_ENTRIES + 1, 2 * COMMIT_EVERY_ENTRIES));
        let _ = done_tx.send(());
        sm
    });
    let finished = done.recv_timeout(Duration::from_secs(60));
    held.release.send(()).unwrap();
    let mut sm = applier.join().unwrap();
    assert!(finished.is_ok(), "an apply waited for the kv store's sync");
    assert_eq!(sm.uncommitted_entries, 2 * COMMIT_EVERY_ENTRIES, "the applies committed during the sync");

    // Once the sync is over, the next apply commits what was left pending.
    let sync = sm.sync.clone();
    tokio::task::spawn_blocking(move || drop(sync.take_turn())).await.unwrap();
    apply_blank(&mut sm, SYNC_EVERY_ENTRIES + 2 * COMMIT_EVERY_ENTRIES + 1, 1).await;
    assert_eq!(sm.uncommitted_entries, 0, "nothing committed after the sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_state_machine_counts_as_gone_only_once_its_sync_is_done() {
    let dir = TempDir::new().unwrap();
    let (held, sm, mut gone) = machine_with_a_held_sync(&dir).await;
    // The sync still holds the database open, so a restart could not reopen it yet.
    drop(sm);
    assert!(!gone.fired(), "gone while its sync still runs");
    held.release.send(()).unwrap();
    assert!(gone.wait(Duration::from_secs(60)).await, "never gone after its sync");
}
