//! Starting a member: the openraft configuration derived from ours, storage opened, the cluster bootstrapped
//! (one founding voter initializes; the first leader adds the topology's learners), and the tasks that watch
//! openraft for the facade (the current leader, the isolated-leader watchdog).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_kv::KvStore;
use meridian_types::NodeId;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{InitializeError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::{NodeInner, RaftNode, fatal};
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::kv_backend::RedbBackend;
use crate::log_store::LogStore;
use crate::observer::ApplyObserver;
use crate::raft::Raft;
use crate::read_policy::ReadPolicy;
use crate::state_machine::{SharedKv, StateMachine};
use crate::transport::Transport;
use crate::transport::network::NetworkFactory;
use crate::types::{MemberRecord, TypeConfig};
use crate::watchdog::{self, Verdict};

/// Entries kept after a snapshot, so a slightly lagging follower still catches up from the log.
const MAX_LOGS_KEPT_AFTER_SNAPSHOT: u64 = 1000;

/// Everything needed to start one member.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This member's id.
    pub id: NodeId,
    /// Where `raft-log.redb`, `state.redb` and `snapshot.bin` live.
    pub disk: Arc<dyn Disk>,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout.
    pub election_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    pub election_max_ms: u64,
    /// Build a snapshot (and purge the log) after this many entries; 0 = never automatically.
    pub snapshot_logs: u64,
    /// Initial voters of a brand-new cluster. The `bootstrapper` (by default the member with the lowest id)
    /// writes it as the first membership (if it has no Raft state yet); the others learn it from that member.
    pub bootstrap_members: BTreeMap<NodeId, MemberRecord>,
    /// Learners of a brand-new cluster. Whichever bootstrap voter, started without Raft state, first
    /// leads adds them (openraft's `initialize` only takes voters). Ignored once they are all members.
    pub bootstrap_learners: BTreeMap<NodeId, MemberRecord>,
    /// Which of `bootstrap_members` writes the first membership and so leads first (nobody else can campaign
    /// before it hears of a membership); `None`, or an id not among them: the lowest id.
    pub bootstrapper: Option<NodeId>,
    /// How the leader confirms leadership for linearizable reads.
    pub read_policy: ReadPolicy,
    /// Resume leadership of the term this member led before a restart, without an election. Unsafe (see
    /// `raft_config`): only the simulation sets it, as a planted bug its checker must catch.
    pub resume_leadership_on_restart: bool,
}

/// openraft configuration derived from ours.
fn raft_config(cfg: &NodeConfig) -> Result<Config> {
    let snapshot_policy =
        if cfg.snapshot_logs == 0 { SnapshotPolicy::Never } else { SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs) };
    let defaults = Config::default();
    let config = Config {
        cluster_name: "meridian".to_string(),
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_min_ms,
        election_timeout_max: cfg.election_max_ms,
        snapshot_policy,
        max_in_snapshot_log_to_keep: MAX_LOGS_KEPT_AFTER_SNAPSHOT.min(cfg.snapshot_logs / 2),
        purge_batch_size: 1,
        // A follower further behind than this gets a snapshot instead of log entries; it must
        // exceed the snapshot interval or a snapshot would not help (openraft's advice).
        replication_lag_threshold: defaults.replication_lag_threshold.max(cfg.snapshot_logs.saturating_mul(2)),
        // A rejoining member must not disrupt a healthy leader by inflating the term (design §5).
        enable_pre_vote: Some(true),
        // A restarted member starts as a follower, as etcd's does, never as the leader of the term it
        // led before the crash. Resuming that term is unsafe: followers may have acknowledged, and a
        // quorum of them committed, entries whose local copy the crash lost (the leader replicates
        // while its own sync is still running), and the resumed leader would append different entries
        // under the same log ids (no new term, so no new ids), breaking log matching; and its read
        // index (its first entry of the term, or the persisted committed id, which lags) can fall below
        // writes acknowledged before the crash. A new election gives a new term whose first entry must
        // commit before any read index is handed out.
        enable_leader_restore: Some(cfg.resume_leadership_on_restart),
        ..defaults
    };
    config.validate().map_err(|e| Error::Fatal(format!("invalid raft config: {e}")))
}

impl RaftNode {
    /// Open storage in `cfg.data_dir`, start openraft, and bootstrap the cluster from
    /// `cfg.bootstrap_members` if this member has no Raft state yet.
    pub async fn start(
        cfg: NodeConfig,
        transport: Arc<dyn Transport>,
        observer: Arc<dyn ApplyObserver>,
    ) -> Result<Self> {
        let config = raft_config(&cfg)?;
        let (log_store, log_released) = LogStore::open_with_waiter(&*cfg.disk)?;
        let backend = RedbBackend::open_on(cfg.disk.clone()).map_err(|e| Error::storage("opening the kv store", e))?;
        let kv: SharedKv =
            Arc::new(RwLock::new(KvStore::open(backend).map_err(|e| Error::storage("loading the kv store", e))?));
        let (sm, sm_released) = StateMachine::with_waiter(kv.clone(), cfg.disk.clone(), observer);
        let defragmenter = sm.defragmenter();

        let raft = Raft::new(
            cfg.id.0,
            Arc::new(config),
            NetworkFactory::new(transport.clone(), Duration::from_millis(cfg.election_max_ms)),
            log_store,
            sm,
        )
        .await
        .map_err(fatal)?;

        // Only one bootstrap member initializes. If every member did, each would campaign at term
        // 1 at once; openraft's per-node terms then make the first leader step down as soon as it
        // meets a peer that voted for itself, so the cluster flaps before it settles. The others
        // receive the same membership from the first leader, which is therefore the initializer.
        let fresh = !raft.is_initialized().await.map_err(fatal)?;
        let bootstrapper = cfg
            .bootstrapper
            .filter(|b| cfg.bootstrap_members.contains_key(b))
            .or_else(|| cfg.bootstrap_members.keys().next().copied());
        if fresh && cfg.bootstrap_members.contains_key(&cfg.id) && !cfg.bootstrap_learners.is_empty() {
            spawn_learner_bootstrap(&raft, cfg.bootstrap_learners.clone());
        }
        if bootstrapper == Some(cfg.id) && fresh {
            let members: BTreeMap<u64, MemberRecord> =
                cfg.bootstrap_members.iter().map(|(id, m)| (id.0, m.clone())).collect();
            match raft.initialize(members).await {
                // NotAllowed: another bootstrapping member already replicated a membership to us.
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(RaftError::APIError(e)) => return Err(Error::Fatal(format!("bootstrap: {e}"))),
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            }
        }

        let leader_rx = spawn_leader_watch(&raft);
        let (isolation_tx, isolation) = watch::channel(Verdict::Serving);
        let inner = NodeInner {
            id: cfg.id,
            raft,
            transport,
            kv,
            defragmenter,
            disk: cfg.disk.clone(),
            leader_rx,
            lease_wait: Duration::from_millis(cfg.election_max_ms.saturating_mul(2)),
            quorum_timeout: Duration::from_millis(cfg.election_max_ms),
            isolation,
            read_policy: cfg.read_policy,
            released: Mutex::new(Some((log_released, sm_released))),
            stopped: AtomicBool::new(false),
            contact: Default::default(),
        };
        let inner = Arc::new(inner);
        spawn_watchdog(Arc::downgrade(&inner), isolation_tx, Duration::from_millis(cfg.heartbeat_ms.max(1)));
        Ok(RaftNode { inner })
    }
}

/// Add the topology's learners once this member leads a brand-new cluster. Ends when every learner is in
/// the membership (whoever added them) or openraft shuts down.
fn spawn_learner_bootstrap(raft: &Raft, learners: BTreeMap<NodeId, MemberRecord>) {
    let raft = raft.clone();
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        loop {
            let (leading, missing) = {
                let m = metrics.borrow_watched();
                let membership = m.membership_config.membership();
                let missing: Vec<(NodeId, MemberRecord)> = learners
                    .iter()
                    .filter(|(id, _)| membership.get_node(&id.0).is_none())
                    .map(|(id, m)| (*id, m.clone()))
                    .collect();
                // Membership changes go one at a time: wait until the current one is applied.
                let settled = m.last_applied.as_ref().map(|l| l.index())
                    >= m.membership_config.log_id().as_ref().map(|l| l.index());
                (m.state == ServerState::Leader && settled, missing)
            };
            if missing.is_empty() {
                return;
            }
            if leading {
                for (id, member) in missing {
                    // Non-blocking: the learner may not be running yet; the leader replicates once it is.
                    match raft.add_learner(id.0, member, false).await {
                        Ok(_) => tracing::info!(learner = id.0, "added bootstrap learner"),
                        Err(e) => {
                            tracing::warn!(learner = id.0, error = %e, "adding bootstrap learner failed; will retry")
                        }
                    }
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

impl NodeInner {
    pub(super) fn watchdog_verdict(&self) -> Verdict {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let is_leader = m.state == ServerState::Leader;
        let membership = m.membership_config.membership();
        let self_quorum = membership.voter_ids().eq([self.id.0]);
        let acked = m.last_quorum_acked.as_ref().map(|t| **t);
        let now = <openraft::alias::InstantOf<TypeConfig> as openraft::Instant>::now();
        watchdog::verdict(now, is_leader, self_quorum, acked, self.quorum_timeout)
    }
}

/// Re-judges the watchdog every `poll` and publishes when the verdict flips, for proposals in
/// flight to wait on (`RaftNode::quorum_lost`). Ends once the node is dropped or stopped.
fn spawn_watchdog(node: Weak<NodeInner>, tx: watch::Sender<Verdict>, poll: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = node.upgrade() else { break };
            if inner.stopped.load(Ordering::SeqCst) {
                break;
            }
            let verdict = inner.watchdog_verdict();
            drop(inner);
            tx.send_if_modified(|cur| {
                let flipped = matches!(*cur, Verdict::Isolated { .. }) != matches!(verdict, Verdict::Isolated { .. });
                *cur = verdict;
                flipped
            });
        }
    });
}

/// Mirror openraft's `current_leader` metric into a tokio watch that only changes on a change.
/// It follows the server metrics, which change with the vote, role and membership only: the full
/// metrics change with every write and would wake this task (a context switch) per write.
fn spawn_leader_watch(raft: &Raft) -> watch::Receiver<Option<NodeId>> {
    let mut metrics = raft.server_metrics();
    let initial = metrics.borrow_watched().current_leader.map(NodeId);
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        loop {
            let leader = metrics.borrow_watched().current_leader.map(NodeId);
            tx.send_if_modified(|cur| {
                let changed = *cur != leader;
                *cur = leader;
                changed
            });
            // Ends when openraft shuts down (metrics sender dropped) or nobody listens any more.
            tokio::select! {
                biased;
                _ = tx.closed() => break,
                res = metrics.changed() => if res.is_err() { break },
            }
        }
    });
    rx
}
