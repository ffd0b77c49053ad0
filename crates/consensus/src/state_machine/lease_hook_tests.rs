//! Every applied lease grant and revoke reaches the observer, in log order, once the kv store holds the batch
//! that made it.

use meridian_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};
use openraft::entry::RaftEntry;
use openraft::testing::log_id;
use tempfile::TempDir;

use super::*;
use crate::disk::OsDisk;
use crate::types::{Command, Entry};

/// Records lease changes, each with the leases the kv store held when it was reported.
struct Recorder {
    kv: SharedKv,
    seen: Mutex<Vec<(LeaseChange, Vec<LeaseId>)>>,
}

impl ApplyObserver for Recorder {
    fn on_events(&self, _revision: Revision, _events: &[Event]) {}

    fn on_lease(&self, change: LeaseChange) {
        let held = self.kv.read().leases().into_iter().map(|l| l.id).collect();
        self.seen.lock().push((change, held));
    }
}

fn entry(index: u64, cmd: Cmd) -> Entry {
    Entry::new_normal(
        log_id::<TypeConfig>(1, 1, index),
        Command(Arc::new(RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() })),
    )
}

fn grant(index: u64, id: i64, ttl: i64) -> Entry {
    entry(index, Cmd::LeaseGrant(LeaseGrantRequest { id, ttl }))
}

fn revoke(index: u64, id: i64) -> Entry {
    entry(index, Cmd::LeaseRevoke(LeaseRevokeRequest { id }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_grants_and_revokes_reach_the_observer_in_log_order() {
    let dir = TempDir::new().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(OsDisk::open(dir.path()).unwrap());
    let kv: SharedKv = Arc::new(RwLock::new(KvStore::open(RedbBackend::open_on(disk.clone()).unwrap()).unwrap()));
    let recorder = Arc::new(Recorder { kv: kv.clone(), seen: Mutex::new(Vec::new()) });
    let mut sm = StateMachine::new(kv, disk, recorder.clone());

    let batch = vec![
        grant(1, 7, 30),
        // A second grant of the same id is rejected: it must not restart the lease's timer.
        grant(2, 7, 99),
        grant(3, 8, 5),
        revoke(4, 7),
        // A revoke of a lease that is already gone is still reported: no timer may run for it.
        revoke(5, 7),
    ];
    sm.apply(futures::stream::iter(batch.into_iter().map(|e| Ok((e, None))))).await.expect("apply");

    // Reported after the whole batch is in the store, so every report sees only lease 8 left.
    let after = vec![LeaseId(8)];
    let seen = recorder.seen.lock().clone();
    assert_eq!(
        seen,
        vec![
            (LeaseChange::Granted { id: LeaseId(7), ttl: 30 }, after.clone()),
            (LeaseChange::Granted { id: LeaseId(8), ttl: 5 }, after.clone()),
            (LeaseChange::Revoked(LeaseId(7)), after.clone()),
            (LeaseChange::Revoked(LeaseId(7)), after),
        ]
    );
}
