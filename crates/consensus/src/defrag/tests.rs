use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use meridian_kv::{Backend, KvStore};
use meridian_proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use parking_lot::RwLock;

use super::*;
use crate::test_disk::{HookedDisk, Hooks};

type Kv = Arc<RwLock<KvStore<RedbBackend>>>;

fn apply(kv: &Kv, cmd: Cmd) {
    kv.write().apply(&RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() }).unwrap();
}

fn put(key: &str, len: usize) -> Cmd {
    Cmd::Put(PutRequest { key: key.as_bytes().to_vec(), value: vec![b'v'; len], ..Default::default() })
}

fn everything(kv: &Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    let req = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    kv.read().range(&req).unwrap().kvs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

#[test]
fn a_defragmentation_gives_freed_space_back_and_keeps_a_commit_made_while_it_copied() {
    let dir = tempfile::tempdir().unwrap();
    // Weak: the hook lives in the disk, which the store holds.
    let cell: Arc<OnceLock<std::sync::Weak<RwLock<KvStore<RedbBackend>>>>> = Arc::default();
    let once = Arc::new(AtomicBool::new(false));
    // The first write into the copy commits a put to the store being copied, as the apply path may.
    let hooks = Hooks {
        before_write: {
            let (cell, once) = (cell.clone(), once.clone());
            Arc::new(move || {
                if let Some(kv) = cell.get().and_then(std::sync::Weak::upgrade)
                    && !once.swap(true, Ordering::SeqCst)
                {
                    let kv = &kv;
                    apply(kv, put("during", 10));
                    kv.write().commit(Vec::new()).unwrap();
                }
                Ok(())
            })
        },
        ..Hooks::default()
    };
    let disk: Arc<dyn crate::disk::Disk> = Arc::new(HookedDisk::new(dir.path(), DEFRAG_FILE, hooks).unwrap());
    let backend = RedbBackend::open_on(disk.clone()).unwrap();
    backend.set_durable(false);
    let kv: Kv = Arc::new(RwLock::new(KvStore::open(backend).unwrap()));
    for i in 0..3000 {
        apply(&kv, put(&format!("k{i:05}"), 1024));
    }
    kv.write().commit(Vec::new()).unwrap();
    apply(
        &kv,
        Cmd::DeleteRange(DeleteRangeRequest {
            key: b"k00010".to_vec(),
            range_end: b"l".to_vec(),
            ..Default::default()
        }),
    );
    let head = kv.read().current_revision().0;
    apply(&kv, Cmd::Compaction(CompactionRequest { revision: head, physical: true }));
    kv.write().commit(Vec::new()).unwrap();
    let _ = cell.set(Arc::downgrade(&kv));
    let before_contents = everything(&kv);
    assert_eq!(before_contents.len(), 10);

    let report = defragment(&kv, &KvSync::default()).unwrap();

    assert!(once.load(Ordering::SeqCst), "the hook ran during the copy");
    assert!(report.replayed >= 1, "{report:?}");
    assert!(report.after * 4 < report.before, "{report:?}");
    assert_eq!(kv.read().backend().size_bytes(), report.after);
    assert_eq!(disk.file_size(DEFRAG_FILE), 0, "the copy was renamed");
    let mut expected = before_contents.clone();
    expected.push((b"during".to_vec(), vec![b'v'; 10]));
    expected.sort();
    assert_eq!(everything(&kv), expected);

    // The swapped-in file is the database from now on, and durable.
    let hash = kv.read().hash_kv(meridian_types::Revision(0)).unwrap();
    drop((kv, disk));
    let reopened = KvStore::open(RedbBackend::open(dir.path()).unwrap()).unwrap();
    assert_eq!(reopened.hash_kv(meridian_types::Revision(0)).unwrap(), hash);
}
