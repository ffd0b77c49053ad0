//! `RaftNode`: the facade the server uses. It opens storage, starts openraft, bootstraps a new
//! cluster, and turns openraft's API and errors into Meridian's (`propose`, `read_barrier`,
//! `status`, `leader_changes`, `handle_peer_message`, `shutdown`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_kv::{CommandResponse, KvStore};
use meridian_proto::meridianpb::RaftCommand;
use meridian_types::NodeId;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, Fatal, ForwardReason, InitializeError, LinearizableReadError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::fsutil::DropWaiter;
use crate::inbound::dispatch;
use crate::kv_backend::RedbBackend;
use crate::log_store::LogStore;
use crate::observer::ApplyObserver;
use crate::raft::Raft;
use crate::read_policy::ReadPolicy;
use crate::state_machine::{SharedKv, StateMachine};
use crate::transport::Transport;
use crate::transport::network::NetworkFactory;
use crate::types::{ApplyResponse, Command, MemberRecord, TypeConfig, Vote};
use crate::watchdog::{self, Verdict};

mod leadership;
mod membership;

/// How long `read_barrier` waits for the local state machine to reach the read index.
const READ_APPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for openraft's tasks to release storage.
const SHUTDOWN_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
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

/// A point-in-time view of this member's Raft state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This member.
    pub id: NodeId,
    /// The leader this member knows of.
    pub leader: Option<NodeId>,
    /// Current term.
    pub term: u64,
    /// Index of the last entry in the local log (0 when empty).
    pub last_log_index: u64,
    /// Highest index known committed (0 when none).
    pub committed: u64,
    /// Highest index applied to the kv store (0 when none).
    pub applied: u64,
    /// Index covered by the latest snapshot, if any.
    pub snapshot_index: Option<u64>,
    /// Highest index purged from the log, if any.
    pub purged_index: Option<u64>,
    /// Whether this member is the leader.
    pub is_leader: bool,
    /// Voting members of the effective membership.
    pub voters: Vec<NodeId>,
    /// Non-voting members (learners).
    pub learners: Vec<NodeId>,
    /// Every member with its description.
    pub members: BTreeMap<NodeId, MemberRecord>,
}

/// A running Raft member. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    pub(crate) inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    id: NodeId,
    pub(crate) raft: Raft,
    /// The peer transport, also used to forward membership changes to the leader.
    pub(crate) transport: Arc<dyn Transport>,
    kv: SharedKv,
    leader_rx: watch::Receiver<Option<NodeId>>,
    /// How long a new leader may take to get its first quorum acknowledgement.
    lease_wait: Duration,
    /// The isolated-leader watchdog's limit: the maximum election timeout.
    quorum_timeout: Duration,
    /// The watchdog's verdict, re-judged every heartbeat interval by one task per node
    /// (`spawn_watchdog`), for proposals in flight to wait on.
    isolation: watch::Receiver<Verdict>,
    pub(crate) read_policy: ReadPolicy,
    /// Complete once the log store and the state machine are dropped by openraft.
    released: Mutex<Option<(DropWaiter, DropWaiter)>>,
    stopped: AtomicBool,
}

fn storage<E: std::fmt::Display>(e: E) -> Error {
    Error::Storage(e.to_string())
}

pub(crate) fn fatal(e: Fatal<TypeConfig>) -> Error {
    match e {
        Fatal::Stopped => Error::Shutdown,
        other => Error::Fatal(other.to_string()),
    }
}

fn not_leader(leader: Option<u64>) -> Error {
    match leader {
        Some(id) => Error::NotLeader { leader: Some(NodeId(id)) },
        None => Error::NoLeader,
    }
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
        let backend = RedbBackend::open_on(cfg.disk.clone()).map_err(storage)?;
        let kv: SharedKv = Arc::new(RwLock::new(KvStore::open(backend).map_err(storage)?));
        let (sm, sm_released) = StateMachine::with_waiter(kv.clone(), cfg.disk.clone(), observer);

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
            leader_rx,
            lease_wait: Duration::from_millis(cfg.election_max_ms.saturating_mul(2)),
            quorum_timeout: Duration::from_millis(cfg.election_max_ms),
            isolation,
            read_policy: cfg.read_policy,
            released: Mutex::new(Some((log_released, sm_released))),
            stopped: AtomicBool::new(false),
        };
        let inner = Arc::new(inner);
        spawn_watchdog(Arc::downgrade(&inner), isolation_tx, Duration::from_millis(cfg.heartbeat_ms.max(1)));
        Ok(RaftNode { inner })
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Replicate `cmd` and apply it. The outer error is about consensus (not leader, shut down);
    /// the inner result is the kv store's deterministic answer to the command.
    pub async fn propose(&self, cmd: RaftCommand) -> Result<meridian_kv::Result<CommandResponse>> {
        self.check_running()?;
        self.check_quorum_contact()?;
        let cmd = Command(Arc::new(cmd));
        let mut waited_for_lease = false;
        loop {
            // An isolated leader never commits; give up on the proposal once the watchdog trips
            // instead of hanging (the entry may still commit later, so the outcome is unknown).
            let written = tokio::select! {
                biased;
                w = self.inner.raft.client_write(cmd.clone()) => w,
                e = self.quorum_lost() => return Err(e),
            };
            match written {
                Ok(resp) => {
                    return match resp.data {
                        ApplyResponse::Command(r) => Ok(r),
                        ApplyResponse::Empty => {
                            Err(Error::Fatal("normal entry applied without a command outcome".into()))
                        }
                    };
                }
                // A freshly elected leader accepts writes only once a quorum has acknowledged it
                // (openraft's leader lease). Wait for that once instead of bouncing the client.
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))
                    if f.reason == ForwardReason::LeaseExpired && !waited_for_lease =>
                {
                    waited_for_lease = true;
                    let wait = self.inner.raft.wait(Some(self.inner.lease_wait));
                    if wait.leader_with_quorum_acked(None, "propose: leader lease").await.is_err() {
                        return Err(Error::Unavailable("leader has no quorum acknowledgement".into()));
                    }
                }
                Err(RaftError::APIError(e)) => {
                    return Err(match e {
                        ClientWriteError::ForwardToLeader(f) if f.reason == ForwardReason::LeaseExpired => {
                            Error::Unavailable("leader lease expired: no recent quorum acknowledgement".into())
                        }
                        ClientWriteError::ForwardToLeader(f) => not_leader(f.leader_id),
                        ClientWriteError::LogEntryDiscarded(_) => Error::LeaderChanged,
                        other => Error::Fatal(other.to_string()),
                    });
                }
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            }
        }
    }

    /// Linearizable read barrier: confirm leadership (ReadIndex: with a quorum round trip;
    /// LeaseRead: from the leader lease, per `NodeConfig::read_policy`), then wait until the local
    /// kv store has applied up to the read index. Reads after it returns are linearizable. Only
    /// the leader can serve it; others get `NotLeader`, an isolated leader `NoLeader`.
    pub async fn read_barrier(&self) -> Result<()> {
        self.check_running()?;
        self.check_quorum_contact()?;
        let linearizer =
            match self.inner.raft.get_read_linearizer(openraft::ReadPolicy::from(self.inner.read_policy)).await {
                Ok(l) => l,
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                    return Err(not_leader(f.leader_id));
                }
                Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(q))) => {
                    return Err(Error::Unavailable(q.to_string()));
                }
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            };
        match linearizer.try_await_ready(&self.inner.raft, Some(READ_APPLY_TIMEOUT)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => {
                Err(Error::Unavailable("timed out waiting for the state machine to reach the read index".into()))
            }
            Err(e) => Err(fatal(e)),
        }
    }

    /// ReadIndex for a read served elsewhere: confirm leadership with a quorum and return the log index
    /// a member must have applied before its local state answers a linearizable read. Leader only.
    pub async fn read_index(&self) -> Result<u64> {
        self.check_running()?;
        self.check_quorum_contact()?;
        match self.inner.raft.get_read_linearizer(openraft::ReadPolicy::from(self.inner.read_policy)).await {
            Ok(l) => Ok(l.read_log_id().index()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => Err(not_leader(f.leader_id)),
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(q))) => {
                Err(Error::Unavailable(q.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(fatal(e)),
        }
    }

    /// Wait until the local state machine has applied `index` (the follower half of a forwarded ReadIndex).
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        self.check_running()?;
        match self.inner.raft.wait(Some(timeout)).applied_index_at_least(Some(index), "wait_applied").await {
            Ok(_) => Ok(()),
            Err(openraft::metrics::WaitError::Timeout(..)) => {
                Err(Error::Unavailable("timed out waiting for the state machine to reach the read index".into()))
            }
            Err(_) => Err(Error::Shutdown),
        }
    }

    /// etcd's MoveLeader: hand leadership to `target` and wait, at most `timeout`, until this member sees it
    /// lead. Only the leader can; a target that is this member succeeds at once, one that is not a voter is
    /// refused. openraft's transfer stops the leader proposing and tells the target to campaign at once,
    /// without waiting for leases to run out.
    pub async fn move_leader(&self, target: NodeId, timeout: Duration) -> Result<()> {
        self.check_running()?;
        let leader = self.current_leader();
        if leader != Some(self.inner.id) {
            return Err(Error::NotLeader { leader });
        }
        if target == self.inner.id {
            return Ok(());
        }
        let is_voter = {
            let rx = self.inner.raft.metrics();
            let m = rx.borrow_watched();
            m.membership_config.membership().voter_ids().any(|v| v == target.0)
        };
        if !is_voter {
            return Err(Error::BadTransferee);
        }
        let mut leaders = self.leader_changes();
        self.inner.raft.trigger().transfer_leader(target.0).await.map_err(fatal)?;
        match tokio::time::timeout(timeout, leaders.wait_for(|l| *l == Some(target))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Err(Error::TransferTimeout),
        }
    }

    /// The leader once one is established, waiting at most `timeout`: the leader of a committed vote (one a
    /// quorum granted), which another member follows or this one holds in the Leader state. A candidate, and a
    /// member that granted it its vote, name the candidate before it has won; that does not count.
    pub async fn established_leader(&self, timeout: Duration) -> Option<NodeId> {
        self.established_leader_where(timeout, |_| true).await
    }

    /// This member's vote as it stands: the leader it names, the term, and whether a quorum granted it.
    pub fn vote(&self) -> Vote {
        self.inner.raft.metrics().borrow_watched().vote
    }

    /// Like [`RaftNode::established_leader`], but only once this member's vote is no longer `seen`: after a
    /// leader answered that it leads no more, wait for what came after it, not for the leader it used to be.
    pub async fn established_leader_since(&self, seen: Vote, timeout: Duration) -> Option<NodeId> {
        self.established_leader_where(timeout, move |vote| *vote != seen).await
    }

    async fn established_leader_where(
        &self,
        timeout: Duration,
        also: impl Fn(&Vote) -> bool + Send + 'static,
    ) -> Option<NodeId> {
        let established = move |m: &openraft::RaftMetrics<TypeConfig>| {
            m.vote.committed
                && also(&m.vote)
                && m.current_leader.is_some_and(|l| l != m.id || m.state == ServerState::Leader)
        };
        let m = self.inner.raft.wait(Some(timeout)).metrics(established, "an established leader").await.ok()?;
        m.current_leader.map(NodeId)
    }

    /// The leader this member knows of, without building a full status.
    pub fn current_leader(&self) -> Option<NodeId> {
        *self.inner.leader_rx.borrow()
    }

    /// The description of member `id` in the effective membership.
    pub fn member(&self, id: NodeId) -> Option<MemberRecord> {
        let rx = self.inner.raft.metrics();
        let m = rx.borrow_watched();
        m.membership_config.membership().get_node(&id.0).cloned()
    }

    /// The local kv store (serializable reads, watches, status).
    pub fn kv(&self) -> &Arc<RwLock<KvStore<RedbBackend>>> {
        &self.inner.kv
    }

    /// The openraft handle itself, for this crate's integration tests (waiting on metrics, triggering
    /// elections and snapshots). The server uses only the facade's methods.
    #[doc(hidden)]
    pub fn raft(&self) -> &openraft::Raft<TypeConfig, StateMachine> {
        &self.inner.raft
    }

    /// The current Raft term alone. Every response header carries it, so it is read without building a
    /// whole [`NodeStatus`] (which copies the membership).
    pub fn term(&self) -> u64 {
        self.inner.raft.metrics().borrow_watched().current_term
    }

    /// Current Raft state from openraft's metrics.
    pub fn status(&self) -> NodeStatus {
        let rx = self.inner.raft.metrics();
        let m = rx.borrow_watched();
        let membership = m.membership_config.membership();
        NodeStatus {
            id: self.inner.id,
            leader: m.current_leader.map(NodeId),
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            committed: m.local_committed.as_ref().map(|l| l.index()).unwrap_or(0),
            applied: m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index()),
            purged_index: m.purged.as_ref().map(|l| l.index()),
            is_leader: m.state == ServerState::Leader,
            voters: membership.voter_ids().map(NodeId).collect(),
            learners: membership.learner_ids().map(NodeId).collect(),
            members: membership.nodes().map(|(id, n)| (NodeId(*id), n.clone())).collect(),
        }
    }

    /// A watch of the leader id as this member sees it; `None` while there is no leader. The value
    /// current when this is called counts as a change, so a loop on `changed()` sees it first: a
    /// single member often wins its election before the watch starts, and a consumer that only
    /// waited for the next change would never learn it leads.
    pub fn leader_changes(&self) -> watch::Receiver<Option<NodeId>> {
        let mut rx = self.inner.leader_rx.clone();
        rx.mark_changed();
        rx
    }

    /// Entry point for the peer transport: decode a request from another member, hand it to
    /// openraft, return the encoded reply.
    pub async fn handle_peer_message(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        self.check_running()?;
        dispatch(&self.inner.raft, &bytes).await
    }

    /// Entry point for a leader's append stream (see [`Transport::append_stream`]): the decoded requests go
    /// to openraft in order, and the encoded answers come back in the same order.
    pub fn serve_append_stream(
        &self,
        requests: futures::stream::BoxStream<'static, Vec<u8>>,
    ) -> Result<futures::stream::BoxStream<'static, Vec<u8>>> {
        self.check_running()?;
        Ok(crate::append_stream::serve(&self.inner.raft, requests))
    }

    /// Stop openraft, wait until it has released the log store and state machine (so the same
    /// data dir can be reopened), and make the kv store durable. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.raft.shutdown().await.map_err(|e| Error::Fatal(format!("raft shutdown: {e}")))?;
        let released = self.inner.released.lock().take();
        if let Some((log, sm)) = released {
            if !log.wait(SHUTDOWN_RELEASE_TIMEOUT).await {
                tracing::warn!("raft log store still referenced after shutdown");
            }
            if !sm.wait(SHUTDOWN_RELEASE_TIMEOUT).await {
                tracing::warn!("state machine still referenced after shutdown");
            }
        }
        // Applies left changes pending or committed with Durability::None; leave a clean, durable
        // state behind (the staged applied id is committed with the data).
        let mut kv = self.inner.kv.write();
        kv.commit(Vec::new()).map_err(storage)?;
        kv.backend().sync().map_err(storage)
    }

    /// The isolated-leader watchdog (see `watchdog`): a leader that has not been acknowledged by
    /// a quorum for an election timeout refuses with `NoLeader` — the error an isolated etcd
    /// member gives (code Unavailable, "etcdserver: no leader"), so clients move to another
    /// member. The request was not proposed, so it is safe to retry elsewhere.
    fn check_quorum_contact(&self) -> Result<()> {
        match self.inner.watchdog_verdict() {
            Verdict::Serving => Ok(()),
            Verdict::Isolated { silent_for } => {
                tracing::debug!(?silent_for, "isolated leader refuses a request");
                Err(Error::NoLeader)
            }
        }
    }

    /// Resolves once the watchdog finds this leader isolated, with the error for a proposal that
    /// was in flight: `Unavailable` (etcd's "request timed out"), because it may still commit.
    /// Waits on the watchdog task's verdict rather than arming a timer per proposal: each timer
    /// woke the runtime's I/O driver, a syscall on every write.
    async fn quorum_lost(&self) -> Error {
        let mut isolation = self.inner.isolation.clone();
        loop {
            // The published verdict may be one tick old; the live one decides.
            if matches!(*isolation.borrow_and_update(), Verdict::Isolated { .. })
                && let Verdict::Isolated { silent_for } = self.inner.watchdog_verdict()
            {
                return Error::Unavailable(format!(
                    "leader has not heard from a quorum for {} ms; the proposal's outcome is unknown",
                    silent_for.as_millis()
                ));
            }
            if isolation.changed().await.is_err() {
                // The node stopped; the proposal itself ends with it.
                std::future::pending::<()>().await;
            }
        }
    }

    pub(crate) fn check_running(&self) -> Result<()> {
        if self.inner.stopped.load(Ordering::SeqCst) { Err(Error::Shutdown) } else { Ok(()) }
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
    fn watchdog_verdict(&self) -> Verdict {
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
