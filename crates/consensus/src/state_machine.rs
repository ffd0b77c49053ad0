//! openraft's `RaftStateMachine` over the MVCC store `KvStore<RedbBackend>`.
//!
//! Each batch openraft hands to `apply` is applied under one write-lock acquisition. The applied
//! log id (and the membership, when it changes) is *staged* in the kv store
//! (`KvStore::stage_meta`), so whichever commit persists the data carries the matching applied
//! position: data and applied position are atomic, like etcd's consistent index.
//!
//! ## Durability
//! Applied changes are not committed per batch. They accumulate in the kv store's pending overlay
//! (reads see them) and are committed in one redb transaction with `Durability::None` (no fsync)
//! once `COMMIT_EVERY_ENTRIES` entries or `COMMIT_PENDING_BYTES` are pending, before a snapshot is
//! built, when `Maintenance.Snapshot` asks for one, and on shutdown. This is safe because recovery
//! re-applies from the Raft log, which is fsynced. Verified in openraft 0.10.0-alpha.37:
//! - `RaftCore::run_save_committed_and_apply` calls `RaftLogStorage::save_committed` *before*
//!   applying, and our log store persists it in the same ordered queue as the entries;
//! - on start, `StorageHelper::get_initial_state` reads `read_committed()` and `applied_state()`,
//!   installs the on-disk snapshot if it is newer than applied (`restore_from_snapshot`), then
//!   re-applies `(applied, committed]` from the log (`reapply_committed`).
//!
//! So a crash that loses uncommitted or unsynced state-machine changes rolls `applied` back to the
//! last durable commit and the log brings it forward again. What must never be lost is anything
//! the log cannot replay: the state up to a snapshot (openraft purges the log below it), so
//! `build_snapshot` makes the state durable before it returns, and `install_snapshot` restores
//! durably (data and applied id in one transaction), with the snapshot file written before the
//! log is purged. The apply path itself never fsyncs: every `SYNC_EVERY_ENTRIES` entries it
//! starts a sync of the kv store on a blocking thread (`start_sync`), which bounds the replay on
//! restart, lets redb reuse the pages freed by non-durable commits and keeps each sync's
//! writeback small; while any sync runs it leaves its changes pending rather than wait for redb's
//! writer (see `kv_sync`).
//!
//! ## Snapshots
//! A snapshot is the kv store frozen at an applied log id: `build_snapshot` holds the kv write lock
//! only to commit what is pending and open a redb read transaction (`KvStore::commit_and_view`),
//! syncs the store on a blocking thread, and keeps that view as the current snapshot (see
//! `snapshot_data`). Nothing is dumped until a peer needs the snapshot. `snapshot.bin` holds only
//! a snapshot received from the leader, written before it is installed, so that startup can
//! install it again if a crash interrupted the install. Without that case, startup freezes the kv
//! store as it is, which is at or past the last snapshot because every snapshot was synced before
//! openraft purged the log below it.

use std::io;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use meridian_kv::{BackendView, CommandResponse, KvStore};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_proto::mvccpb::Event;
use meridian_types::{LeaseId, Revision};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::{Mutex, RwLock};

use crate::codec::{decode, encode};
use crate::defrag::{self, DefragReport};
use crate::disk::{Disk, run_blocking};
use crate::fsutil::{DropSignal, DropWaiter};
use crate::kv_backend::RedbBackend;
use crate::kv_sync::KvSync;
use crate::observer::{ApplyObserver, LeaseChange};
use crate::snapshot_data::{FrozenView, SnapshotData};
use crate::snapshot_file;
use crate::types::{ApplyResponse, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// The kv store shared by the state machine, snapshot builders and readers.
pub type SharedKv = Arc<RwLock<KvStore<RedbBackend>>>;

/// kv meta key of the last applied log id.
pub const META_APPLIED: &str = "raft.applied";
/// kv meta key of the last applied membership.
pub const META_MEMBERSHIP: &str = "raft.membership";

/// Commit the kv store once this many applied entries are pending...
const COMMIT_EVERY_ENTRIES: u64 = 1000;
/// ...or once the pending changes hold this many bytes.
const COMMIT_PENDING_BYTES: usize = 4 << 20;
/// Start a sync of the kv store after this many entries without one (see the module comment).
const SYNC_EVERY_ENTRIES: u64 = 10_000;
/// While a sync runs, applied changes stay pending up to this many bytes (see `kv_sync`).
const MAX_PENDING_BYTES_WHILE_SYNCING: usize = 64 << 20;

/// A snapshot as openraft sees it.
pub type KvSnapshot =
    Snapshot<openraft::alias::CommittedLeaderIdOf<TypeConfig>, u64, crate::types::MemberRecord, SnapshotData>;

/// The current snapshot, once one was built, installed or asked for since the start.
type HeldSnapshot = Arc<Mutex<Option<Arc<FrozenView>>>>;

/// The Raft state machine.
pub struct StateMachine {
    kv: SharedKv,
    disk: Arc<dyn Disk>,
    observer: Arc<dyn ApplyObserver>,
    /// Serialises snapshot-file replacement and remembers what the file holds.
    snapshot_lock: Arc<Mutex<()>>,
    /// The current snapshot, a frozen view of the kv store (see the module comment).
    current: HeldSnapshot,
    /// Applied log id and membership after the last applied entry; `None` = read from the kv store.
    applied: Option<(Option<LogId>, StoredMembership)>,
    /// Entries applied since the last kv commit.
    uncommitted_entries: u64,
    /// Syncs of the kv store (see `kv_sync`).
    sync: KvSync,
    /// Last field: fires when the state machine and any sync it started are gone.
    dropped: Arc<DropSignal>,
}

/// Builds a snapshot: freezes the kv store as it is (see the module comment).
pub struct SnapshotBuilder {
    kv: SharedKv,
    disk: Arc<dyn Disk>,
    current: HeldSnapshot,
    sync: KvSync,
    alive: Arc<DropSignal>,
}

impl StateMachine {
    /// Wrap `kv`; `disk` holds `snapshot.bin`. From now on the kv store's commits skip the fsync
    /// (see the module comment).
    pub fn new(kv: SharedKv, disk: Arc<dyn Disk>, observer: Arc<dyn ApplyObserver>) -> StateMachine {
        Self::with_waiter(kv, disk, observer).0
    }

    /// Like [`StateMachine::new`], also returning a waiter that completes once it is dropped.
    pub(crate) fn with_waiter(
        kv: SharedKv,
        disk: Arc<dyn Disk>,
        observer: Arc<dyn ApplyObserver>,
    ) -> (StateMachine, DropWaiter) {
        kv.read().backend().set_durable(false);
        let (signal, waiter) = DropSignal::new();
        let sm = StateMachine {
            kv,
            disk,
            observer,
            snapshot_lock: Arc::new(Mutex::new(())),
            current: Arc::default(),
            applied: None,
            uncommitted_entries: 0,
            sync: KvSync::default(),
            dropped: Arc::new(signal),
        };
        (sm, waiter)
    }

    /// Makes the kv store's commits so far durable off the apply path: on a blocking thread where
    /// the disk has them, inline in the simulation. One at a time; see `kv_sync`.
    fn start_sync(&self) -> io::Result<()> {
        if !self.sync.claim_background() {
            return Ok(());
        }
        let backend = self.kv.read().backend().clone();
        let sync = self.sync.clone();
        // The database stays open until the sync is done; a restart must wait for that too.
        let alive = self.dropped.clone();
        let work = move || {
            let res = sync.take_turn().sync(&backend);
            sync.release_background();
            drop(alive);
            res
        };
        if !self.disk.blocking_on_threads() {
            return work();
        }
        tokio::task::spawn_blocking(move || {
            // Nothing is lost: the Raft log still holds every entry, and the next sync retries.
            if let Err(e) = work() {
                tracing::error!("syncing the kv store failed: {e}");
            }
        });
        Ok(())
    }
}

/// Applied log id and membership of the kv store's current state (staged metadata included).
pub(crate) fn read_applied(kv: &KvStore<RedbBackend>) -> io::Result<(Option<LogId>, StoredMembership)> {
    decode_applied(|key| kv.meta(key))
}

/// Applied log id and membership of the state a backend view holds.
fn read_applied_in<V: BackendView>(view: &V) -> io::Result<(Option<LogId>, StoredMembership)> {
    decode_applied(|key| view.meta(key))
}

fn decode_applied(
    meta: impl Fn(&str) -> meridian_kv::Result<Option<Vec<u8>>>,
) -> io::Result<(Option<LogId>, StoredMembership)> {
    let get = |key: &str| meta(key).map_err(io::Error::other);
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

/// Write `meta`/`data` as `snapshot.bin` unless it already holds a newer snapshot (two installs
/// racing must not move it backwards).
fn store_snapshot(disk: &dyn Disk, lock: &Mutex<()>, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let _guard = lock.lock();
    if let Some(current) = snapshot_file::read_meta(disk)?
        && current.last_log_id > meta.last_log_id
    {
        return Ok(());
    }
    snapshot_file::write_with(disk, meta, &mut |w| w.write_all(data))
}

/// Freezes the kv store as it is now, made durable: openraft purges the log below a snapshot.
fn freeze(kv: &SharedKv, sync: &KvSync, disk: Arc<dyn Disk>, alive: Arc<DropSignal>) -> io::Result<Arc<FrozenView>> {
    // Before the kv lock: never hold the kv store while waiting for another sync.
    let turn = sync.take_turn();
    let (view, backend) = {
        // Under the write lock no batch is half applied: commit it all (with its staged applied id
        // and membership) and freeze that instant.
        let mut kv = kv.write();
        let view = kv.commit_and_view().map_err(io::Error::other)?;
        (view, kv.backend().clone())
    };
    // Off the lock: an apply commit that lands meanwhile simply becomes durable too.
    turn.sync(&backend)?;
    drop(turn);
    let (applied, membership) = read_applied_in(&view)?;
    let meta = SnapshotMeta { last_log_id: applied, last_membership: membership };
    Ok(Arc::new(FrozenView::new(meta, view, disk, alive)))
}

/// Makes `view` the current snapshot unless a newer one is (a build racing an install).
fn hold(current: &HeldSnapshot, view: Arc<FrozenView>) -> Arc<FrozenView> {
    let mut current = current.lock();
    match &*current {
        Some(held) if held.meta.last_log_id > view.meta.last_log_id => held.clone(),
        _ => {
            *current = Some(view.clone());
            view
        }
    }
}

/// Whether a rejected revoke still means no timer should run for its lease: only when the lease is gone. A
/// revoke refused for permissions (or anything else) leaves the lease in the store, and its timer must keep
/// running so that it expires.
fn revoked_anyway(e: &meridian_kv::Error) -> bool {
    matches!(e, meridian_kv::Error::Etcd(meridian_types::EtcdError::LeaseNotFound))
}

/// The lease change an applied command made: a grant that succeeded, or a revoke that removed the lease or
/// found it gone ([`revoked_anyway`]).
fn lease_change(cmd: &RaftCommand, response: Option<&CommandResponse>) -> Option<LeaseChange> {
    match (&cmd.cmd, response) {
        (Some(Cmd::LeaseGrant(_)), Some(CommandResponse::LeaseGrant(r))) => {
            Some(LeaseChange::Granted { id: LeaseId(r.id), ttl: r.ttl })
        }
        (Some(Cmd::LeaseRevoke(r)), _) => Some(LeaseChange::Revoked(LeaseId(r.id))),
        _ => None,
    }
}

fn held_snapshot(view: Arc<FrozenView>) -> KvSnapshot {
    Snapshot { meta: view.meta.clone(), snapshot: SnapshotData::View(view) }
}

/// What one applied entry produced, delivered after the batch is committed.
struct Outcome {
    responder: Option<openraft::storage::ApplyResponder<TypeConfig>>,
    response: ApplyResponse,
    revision: Revision,
    events: Vec<Event>,
    lease: Option<LeaseChange>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        match &self.applied {
            Some(applied) => Ok(applied.clone()),
            None => read_applied(&self.kv.read()),
        }
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
        let mut sync = false;
        {
            let mut kv = self.kv.write();
            let (mut last_applied, mut membership) = match self.applied.take() {
                Some(applied) => applied,
                None => read_applied(&kv)?,
            };
            let mut membership_changed = false;
            for (entry, responder) in items {
                last_applied = Some(entry.log_id);
                let (response, events, lease) = match entry.payload {
                    EntryPayload::Blank => (ApplyResponse::Empty, Vec::new(), None),
                    EntryPayload::Membership(m) => {
                        membership = StoredMembership::new(Some(entry.log_id), m);
                        membership_changed = true;
                        (ApplyResponse::Empty, Vec::new(), None)
                    }
                    // A decision made for one term is refused in any other: nothing changes, the entry still
                    // counts as applied.
                    EntryPayload::Normal(cmd)
                        if cmd.0.require_term != 0 && cmd.0.require_term != entry.log_id.leader_id.term =>
                    {
                        let refused = meridian_kv::Error::Etcd(meridian_types::EtcdError::LeaderChanged);
                        (ApplyResponse::Command(Err(refused)), Vec::new(), None)
                    }
                    EntryPayload::Normal(cmd) => match kv.apply(&cmd.0) {
                        Ok(applied) => {
                            let lease = lease_change(&cmd.0, Some(&applied.response));
                            (ApplyResponse::Command(Ok(applied.response)), applied.events, lease)
                        }
                        // A deterministic rejection: nothing changed, the entry still counts as applied.
                        Err(e @ meridian_kv::Error::Etcd(_)) => {
                            let lease = revoked_anyway(&e).then(|| lease_change(&cmd.0, None)).flatten();
                            (ApplyResponse::Command(Err(e)), Vec::new(), lease)
                        }
                        // Storage or corruption: this replica cannot continue; openraft stops the node.
                        Err(e) => {
                            return Err(io::Error::other(format!("applying {}: {e}", entry.log_id)));
                        }
                    },
                };
                outcomes.push(Outcome { responder, response, revision: kv.current_revision(), events, lease });
            }
            // The membership is staged only when it changed; the stored one is current otherwise.
            let mut meta = vec![(META_APPLIED.to_string(), encode(&last_applied)?)];
            if membership_changed {
                meta.push((META_MEMBERSHIP.to_string(), encode(&membership)?));
            }
            kv.stage_meta(meta);
            self.applied = Some((last_applied, membership));
            self.uncommitted_entries += count;
            let due = self.uncommitted_entries >= COMMIT_EVERY_ENTRIES || kv.pending_bytes() >= COMMIT_PENDING_BYTES;
            // A commit now would wait for the running sync's hold on redb's writer (see `kv_sync`).
            let wait = self.sync.running() && kv.pending_bytes() < MAX_PENDING_BYTES_WHILE_SYNCING;
            if due && !wait {
                kv.commit(Vec::new()).map_err(io::Error::other)?;
                sync = self.sync.add_unsynced(self.uncommitted_entries) >= SYNC_EVERY_ENTRIES;
                self.uncommitted_entries = 0;
            }
        }
        if sync {
            self.start_sync()?;
        }
        for o in &outcomes {
            if !o.events.is_empty() {
                self.observer.on_events(o.revision, &o.events);
            }
            if let Some(change) = o.lease {
                self.observer.on_lease(change);
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
        self.snapshot_builder()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        let snapshot = snapshot.into_bytes().await?;
        let kv = self.kv.clone();
        let disk = self.disk.clone();
        let lock = self.snapshot_lock.clone();
        let meta = meta.clone();
        let applied = (meta.last_log_id, meta.last_membership.clone());
        // Until the restore succeeds, the applied state is whatever the kv store says.
        self.applied = None;
        run_blocking(&*self.disk.clone(), move || -> io::Result<()> {
            // File first: if we crash during the restore below, startup installs it again.
            store_snapshot(&*disk, &lock, &meta, &snapshot)?;
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
        .await?;
        self.applied = Some(applied);
        self.uncommitted_entries = 0;
        self.sync.reset();
        // The installed state is the current snapshot now, and no view of the old store may be.
        *self.current.lock() = None;
        self.snapshot_builder().freeze_and_hold().await?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<KvSnapshot>, io::Error> {
        if let Some(view) = self.current.lock().clone() {
            return Ok(Some(held_snapshot(view)));
        }
        // None held since the start. A snapshot file newer than the kv store is an install a crash
        // interrupted: openraft installs it again.
        let (applied, _) = self.applied_state().await?;
        let disk = self.disk.clone();
        let lock = self.snapshot_lock.clone();
        let interrupted = run_blocking(&*self.disk.clone(), move || {
            let _guard = lock.lock();
            match snapshot_file::read_meta(&*disk)? {
                Some(meta) if meta.last_log_id > applied => snapshot_file::read(&*disk),
                _ => Ok(None),
            }
        })
        .await?;
        if let Some((meta, bytes)) = interrupted {
            return Ok(Some(Snapshot { meta, snapshot: SnapshotData::Bytes(bytes) }));
        }
        if applied.is_none() {
            return Ok(None);
        }
        self.snapshot_builder().freeze_and_hold().await.map(|view| Some(held_snapshot(view)))
    }
}

impl StateMachine {
    fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            kv: self.kv.clone(),
            disk: self.disk.clone(),
            current: self.current.clone(),
            sync: self.sync.clone(),
            alive: self.dropped.clone(),
        }
    }
}

/// Defragments the state machine's kv store (see `defrag`) from outside openraft, taking turns with its syncs.
#[derive(Clone)]
pub struct Defragmenter {
    kv: SharedKv,
    disk: Arc<dyn Disk>,
    /// Weak, as `alive`: the held snapshot reads the kv store's file, and a stopped state machine's must close.
    current: std::sync::Weak<Mutex<Option<Arc<FrozenView>>>>,
    sync: KvSync,
    /// Weak: a defragmenter must not keep a stopped state machine's files open.
    alive: std::sync::Weak<DropSignal>,
}

impl StateMachine {
    /// A handle that defragments this state machine's kv store.
    pub fn defragmenter(&self) -> Defragmenter {
        Defragmenter {
            kv: self.kv.clone(),
            disk: self.disk.clone(),
            current: Arc::downgrade(&self.current),
            sync: self.sync.clone(),
            alive: Arc::downgrade(&self.dropped),
        }
    }
}

impl Defragmenter {
    /// Copies the kv store into a fresh file and swaps it in; then, if a snapshot is held, freezes a new one,
    /// since the held one reads the old file and keeps the file system from getting it back.
    pub async fn run(&self) -> io::Result<DefragReport> {
        let this = self.clone();
        run_blocking(&*self.disk.clone(), move || {
            let stopped = || io::Error::other("the state machine has stopped");
            let alive = this.alive.upgrade().ok_or_else(stopped)?;
            let current = this.current.upgrade().ok_or_else(stopped)?;
            let report = defrag::defragment(&this.kv, &this.sync)?;
            if current.lock().is_some() {
                hold(&current, freeze(&this.kv, &this.sync, this.disk.clone(), alive)?);
            }
            Ok(report)
        })
        .await
    }
}

impl SnapshotBuilder {
    /// Freezes the kv store as it is and holds that as the current snapshot, unless a newer one is.
    async fn freeze_and_hold(&self) -> io::Result<Arc<FrozenView>> {
        let (kv, sync, disk, alive, current) =
            (self.kv.clone(), self.sync.clone(), self.disk.clone(), self.alive.clone(), self.current.clone());
        run_blocking(&*self.disk.clone(), move || Ok(hold(&current, freeze(&kv, &sync, disk, alive)?))).await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// Freezes the kv store and keeps that view as the current snapshot; no dump (see the module
    /// comment).
    async fn build_snapshot(&mut self) -> Result<KvSnapshot, io::Error> {
        self.freeze_and_hold().await.map(held_snapshot)
    }
}

#[cfg(test)]
mod lease_hook_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
