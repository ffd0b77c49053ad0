//! A built snapshot is the kv store frozen at its log id: applies after the build do not reach it,
//! and it becomes bytes only when asked for.

use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use openraft::entry::RaftEntry;
use openraft::testing::log_id;
use tempfile::TempDir;

use super::*;
use crate::disk::OsDisk;
use crate::observer::NoopObserver;
use crate::types::{Command, Entry};

fn put(index: u64, key: &str, value: &str) -> Entry {
    let cmd = RaftCommand {
        auth: None,
        cmd: Some(Cmd::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    };
    Entry::new_normal(log_id::<TypeConfig>(1, 1, index), Command(Arc::new(cmd)))
}

async fn apply(sm: &mut StateMachine, entries: Vec<Entry>) {
    let batch: Vec<_> = entries.into_iter().map(|e| Ok((e, None))).collect();
    sm.apply(futures::stream::iter(batch)).await.expect("apply");
}

fn machine(dir: &TempDir) -> StateMachine {
    let disk: Arc<dyn Disk> = Arc::new(OsDisk::open(dir.path()).unwrap());
    let kv: SharedKv = Arc::new(RwLock::new(KvStore::open(RedbBackend::open_on(disk.clone()).unwrap()).unwrap()));
    StateMachine::new(kv, disk, Arc::new(NoopObserver))
}

fn value(kv: &KvStore<RedbBackend>, key: &str) -> Option<Vec<u8>> {
    let resp = kv.range(&RangeRequest { key: key.as_bytes().to_vec(), ..Default::default() }).unwrap();
    resp.kvs.into_iter().next().map(|kv| kv.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_snapshot_holds_the_store_as_of_its_log_id_and_is_dumped_only_when_asked() {
    let dir = TempDir::new().unwrap();
    let mut sm = machine(&dir);
    apply(&mut sm, vec![put(1, "a", "old"), put(2, "b", "old")]).await;
    let built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 2)));
    assert!(matches!(built.snapshot, SnapshotData::View(_)), "the build dumped the store: {:?}", built.snapshot);
    assert!(!dir.path().join(crate::SNAPSHOT_FILE).exists(), "the build wrote a file");

    // Later applies change the live store but not the snapshot, which is still the current one.
    apply(&mut sm, vec![put(3, "a", "new"), put(4, "c", "new")]).await;
    let current = sm.get_current_snapshot().await.unwrap().expect("a current snapshot");
    assert_eq!(current.meta, built.meta);
    let bytes = current.snapshot.into_bytes().await.unwrap();

    let other = TempDir::new().unwrap();
    let backend = RedbBackend::open_on(Arc::new(OsDisk::open(other.path()).unwrap())).unwrap();
    let restored = KvStore::restore(backend, &bytes).unwrap();
    assert_eq!(value(&restored, "a"), Some(b"old".to_vec()));
    assert_eq!(value(&restored, "b"), Some(b"old".to_vec()));
    assert_eq!(value(&restored, "c"), None, "an apply after the build reached the snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_current_snapshot_is_the_store_as_it_was_kept() {
    let dir = TempDir::new().unwrap();
    {
        let mut sm = machine(&dir);
        apply(&mut sm, vec![put(1, "a", "v"), put(2, "b", "v")]).await;
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    }
    // No snapshot file: the kv store itself, synced at the build, is the snapshot.
    let mut sm = machine(&dir);
    let current = sm.get_current_snapshot().await.unwrap().expect("a current snapshot");
    assert_eq!(current.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 2)));
    assert!(matches!(current.snapshot, SnapshotData::View(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_has_no_snapshot() {
    let dir = TempDir::new().unwrap();
    let mut sm = machine(&dir);
    assert!(sm.get_current_snapshot().await.unwrap().is_none());
}
