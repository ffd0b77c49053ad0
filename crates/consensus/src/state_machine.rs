//! openraft's `RaftStateMachine` over the MVCC store `KvStore<RedbBackend>`.
//!
//! Each batch openraft hands to `apply` is applied under one write-lock acquisition and persisted
//! with ONE `KvStore::commit`, whose metadata carries the last applied log id and the last
//! membership: data and applied position are atomic, like etcd's consistent index.
//!
//! ## Durability
//! Those commits use redb `Durability::None` (no fsync). This is safe because recovery re-applies
//! from the Raft log, which is fsynced. Verified in openraft 0.10.0-alpha.37:
//! - `RaftCore::run_save_committed_and_apply` calls `RaftLogStorage::save_committed` *before*
//!   applying, and our log store persists it in the same ordered queue as the entries;
//! - on start, `StorageHelper::get_initial_state` reads `read_committed()` and `applied_state()`,
//!   installs the on-disk snapshot if it is newer than applied (`restore_from_snapshot`), then
//!   re-applies `(applied, committed]` from the log (`reapply_committed`).
//!
//! So a crash that loses unsynced state-machine commits rolls `applied` back to the last durable
//! commit and the log brings it forward again. What must never be lost is anything the log
//! cannot replay: a restored snapshot (the log before it is purged), so `install_snapshot` restores
//! durably (data and applied id in one transaction), and the snapshot file is written before the
//! log is purged. We also sync every
//! `SYNC_EVERY_ENTRIES` entries and before building a snapshot to bound the replay on restart.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use meridian_kv::KvStore;
use meridian_proto::mvccpb::Event;
use meridian_types::Revision;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::{Mutex, RwLock};

use crate::codec::{decode, encode};
use crate::fsutil::{DropSignal, DropWaiter};
use crate::kv_backend::RedbBackend;
use crate::observer::ApplyObserver;
use crate::snapshot_file;
use crate::types::{ApplyResponse, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// The kv store shared by the state machine, snapshot builders and readers.
pub type SharedKv = Arc<RwLock<KvStore<RedbBackend>>>;

/// kv meta key of the last applied log id.
pub const META_APPLIED: &str = "raft.applied";
/// kv meta key of the last applied membership.
pub const META_MEMBERSHIP: &str = "raft.membership";

/// After this many entries applied without an fsync, make the next commit durable.
const SYNC_EVERY_ENTRIES: u64 = 1024;

/// A snapshot as openraft sees it.
pub type KvSnapshot = Snapshot<openraft::alias::CommittedLeaderIdOf<TypeConfig>, u64, crate::types::Member, Vec<u8>>;

/// The Raft state machine.
pub struct StateMachine {
    kv: SharedKv,
    dir: PathBuf,
    observer: Arc<dyn ApplyObserver>,
    /// Serialises snapshot-file replacement and remembers what the file holds.
    snapshot_lock: Arc<Mutex<()>>,
    unsynced_entries: u64,
    /// Last field: fires when the state machine is gone.
    _dropped: DropSignal,
}

/// Builds a snapshot from a consistent view of the kv store.
pub struct SnapshotBuilder {
    kv: SharedKv,
    dir: PathBuf,
    snapshot_lock: Arc<Mutex<()>>,
}

impl StateMachine {
    /// Wrap `kv`; `dir` holds `snapshot.bin`. From now on the kv store's commits skip the fsync
    /// (see the module comment).
    pub fn new(kv: SharedKv, dir: PathBuf, observer: Arc<dyn ApplyObserver>) -> StateMachine {
        Self::with_waiter(kv, dir, observer).0
    }

    /// Like [`StateMachine::new`], also returning a waiter that completes once it is dropped.
    pub(crate) fn with_waiter(
        kv: SharedKv,
        dir: PathBuf,
        observer: Arc<dyn ApplyObserver>,
    ) -> (StateMachine, DropWaiter) {
        kv.read().backend().set_durable(false);
        let (signal, waiter) = DropSignal::new();
        let sm = StateMachine {
            kv,
            dir,
            observer,
            snapshot_lock: Arc::new(Mutex::new(())),
            unsynced_entries: 0,
            _dropped: signal,
        };
        (sm, waiter)
    }
}

/// Applied log id and membership as last committed to the kv store.
pub(crate) fn read_applied(kv: &KvStore<RedbBackend>) -> io::Result<(Option<LogId>, StoredMembership)> {
    let backend = kv.backend();
    let get = |key: &str| meridian_kv::Backend::meta(backend, key).map_err(io::Error::other);
    let applied = match get(META_APPLIED)? {
        Some(b) => decode::<Option<LogId>>(&b)?,
        None => None,
    };
    let membership = match get(META_MEMBERSHIP)? {
        Some(b) => decode::<StoredMembership>(&b)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

fn applied_meta(applied: &Option<LogId>, membership: &StoredMembership) -> io::Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![(META_APPLIED.to_string(), encode(applied)?), (META_MEMBERSHIP.to_string(), encode(membership)?)])
}

/// Write `meta`/`data` as the current snapshot unless the file already holds a newer one
/// (a build racing with an install must not move the snapshot backwards).
fn store_snapshot(dir: &std::path::Path, lock: &Mutex<()>, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let _guard = lock.lock();
    if let Some((current, _)) = snapshot_file::read(dir)?
        && current.last_log_id > meta.last_log_id
    {
        return Ok(());
    }
    snapshot_file::write(dir, meta, data)
}

/// What one applied entry produced, delivered after the batch is committed.
struct Outcome {
    responder: Option<openraft::storage::ApplyResponder<TypeConfig>>,
    response: ApplyResponse,
    revision: Revision,
    events: Vec<Event>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        read_applied(&self.kv.read())
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut items = Vec::new();
        while let Some(item) = entries.next().await {
            items.push(item?);
        }
        if items.is_empty() {
            return Ok(());
        }
        let count = items.len() as u64;
        let mut outcomes = Vec::with_capacity(items.len());
        {
            let mut kv = self.kv.write();
            let (mut last_applied, mut membership) = read_applied(&kv)?;
            for (entry, responder) in items {
                last_applied = Some(entry.log_id);
                let (response, events) = match entry.payload {
                    EntryPayload::Blank => (ApplyResponse::Empty, Vec::new()),
                    EntryPayload::Membership(m) => {
                        membership = StoredMembership::new(Some(entry.log_id), m);
                        (ApplyResponse::Empty, Vec::new())
                    }
                    EntryPayload::Normal(cmd) => match kv.apply(&cmd.0) {
                        Ok(applied) => (ApplyResponse::Command(Ok(applied.response)), applied.events),
                        // A deterministic rejection: nothing changed, the entry still counts as applied.
                        Err(e @ meridian_kv::Error::Etcd(_)) => (ApplyResponse::Command(Err(e)), Vec::new()),
                        // Storage or corruption: this replica cannot continue; openraft stops the node.
                        Err(e) => {
                            return Err(io::Error::other(format!("applying {}: {e}", entry.log_id)));
                        }
                    },
                };
                outcomes.push(Outcome { responder, response, revision: kv.current_revision(), events });
            }
            self.unsynced_entries += count;
            let durable = self.unsynced_entries >= SYNC_EVERY_ENTRIES;
            kv.backend().set_durable(durable);
            let res = kv.commit(applied_meta(&last_applied, &membership)?);
            kv.backend().set_durable(false);
            res.map_err(io::Error::other)?;
            if durable {
                self.unsynced_entries = 0;
            }
        }
        for o in &outcomes {
            if !o.events.is_empty() {
                self.observer.on_events(o.revision, &o.events);
            }
        }
        for o in outcomes {
            if let Some(r) = o.responder {
                r.send(o.response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { kv: self.kv.clone(), dir: self.dir.clone(), snapshot_lock: self.snapshot_lock.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> Result<(), io::Error> {
        let kv = self.kv.clone();
        let dir = self.dir.clone();
        let lock = self.snapshot_lock.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            // File first: if we crash during the restore below, startup installs it again.
            store_snapshot(&dir, &lock, &meta, &snapshot)?;
            let mut kv = kv.write();
            let backend = kv.backend().clone();
            // The log before this snapshot may be purged, so the restore must be durable; data and
            // applied position land in one transaction.
            backend.set_durable(true);
            let restored = KvStore::restore_with_meta(
                backend.clone(),
                &snapshot,
                applied_meta(&meta.last_log_id, &meta.last_membership)?,
            );
            backend.set_durable(false);
            *kv = restored.map_err(io::Error::other)?;
            Ok(())
        })
        .await
        .map_err(io::Error::other)??;
        self.unsynced_entries = 0;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<KvSnapshot>, io::Error> {
        let dir = self.dir.clone();
        let lock = self.snapshot_lock.clone();
        let found = tokio::task::spawn_blocking(move || {
            let _guard = lock.lock();
            snapshot_file::read(&dir)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(found.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<KvSnapshot, io::Error> {
        let kv = self.kv.clone();
        let dir = self.dir.clone();
        let lock = self.snapshot_lock.clone();
        let (meta, data) = tokio::task::spawn_blocking(move || -> io::Result<(SnapshotMeta, Vec<u8>)> {
            let (meta, data) = {
                // Under the read lock no batch is half applied, so data, applied id and
                // membership describe the same instant.
                let kv = kv.read();
                // Persist everything applied so far: a restart then starts from here rather
                // than from this snapshot.
                kv.backend().sync().map_err(io::Error::other)?;
                let (applied, membership) = read_applied(&kv)?;
                let data: Vec<u8> = kv.snapshot().map_err(io::Error::other)?;
                (SnapshotMeta { last_log_id: applied, last_membership: membership }, data)
            };
            store_snapshot(&dir, &lock, &meta, &data)?;
            Ok((meta, data))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Snapshot { meta, snapshot: data })
    }
}
