//! `RaftNode`: the facade the server uses. It turns openraft's API and errors into Meridian's (`propose`,
//! `read_barrier`, `status`, `leader_changes`, `handle_peer_message`, `shutdown`). Starting a member is
//! [`start`]'s; the Cluster API calls are [`membership`]'s; what placement and status views read of the
//! leader's followers is [`leadership`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_kv::{Backend, CommandResponse, KvStore};
use meridian_proto::meridianpb::RaftCommand;
use meridian_types::NodeId;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, Fatal, ForwardReason, LinearizableReadError, RaftError};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::defrag::DefragReport;
use crate::error::{Error, Result, says_disk_full};
use crate::fsutil::DropWaiter;
use crate::inbound::dispatch;
use crate::kv_backend::RedbBackend;
use crate::leader_contact::{Contact, LeaderContact};
use crate::raft::Raft;
use crate::read_policy::ReadPolicy;
use crate::state_machine::{Defragmenter, SharedKv, StateMachine};
use crate::transport::Transport;
use crate::types::{ApplyResponse, Command, MemberRecord, TypeConfig, Vote};
use crate::types::{SenderCheck, any_sender};
use crate::watchdog::Verdict;

mod leadership;
mod membership;
mod start;

pub use start::NodeConfig;

/// How long `read_barrier` waits for the local state machine to reach the read index.
const READ_APPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for openraft's tasks to release storage.
const SHUTDOWN_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Defragments the kv store (`Maintenance.Defragment`).
    pub(crate) defragmenter: Defragmenter,
    /// Where the member's files are.
    pub(crate) disk: Arc<dyn crate::disk::Disk>,
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
    /// The last append a leader sent this member.
    contact: Arc<LeaderContact>,
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

impl RaftNode {
    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Replicate `cmd` and apply it. The outer error is about consensus (not leader, shut down);
    /// the inner result is the kv store's deterministic answer to the command.
    pub async fn propose(&self, cmd: RaftCommand) -> Result<meridian_kv::Result<CommandResponse>> {
        self.check_running()?;
        // Refused before it is proposed (a definite answer): a write that meets the node's death on the way has an
        // unknown outcome instead (`Error::Fatal`).
        if let Some(why) = self.stop_reason() {
            return Err(if says_disk_full(&why) { Error::StoppedOnFullDisk } else { Error::Fatal(why) });
        }
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

    /// Whether the Raft node has stopped on a fatal error (a full disk, say): it applies nothing more.
    pub fn is_stopped(&self) -> bool {
        self.stop_reason().is_some()
    }

    /// Why the Raft node stopped on a fatal error, if it did.
    fn stop_reason(&self) -> Option<String> {
        self.inner.raft.metrics().borrow_watched().running_state.as_ref().err().map(ToString::to_string)
    }

    /// Completes when openraft stops on an unrecoverable error (a storage failure), with that error's text.
    pub async fn stopped(&self) -> String {
        let mut rx = self.inner.raft.metrics();
        loop {
            if let Err(e) = &rx.borrow_watched().running_state {
                return e.to_string();
            }
            if rx.changed().await.is_err() {
                return "the Raft node shut down".to_owned();
            }
        }
    }

    /// The kv store's file size and the bytes of its pages in use (`Maintenance.Status`). The second reads redb's
    /// page statistics, so it runs as the disk runs blocking work: on a thread, or inline in the simulation, whose
    /// runs must not depend on a thread's timing.
    pub async fn db_sizes(&self) -> (u64, u64) {
        let backend = self.inner.kv.read().backend().clone();
        let size = backend.size_bytes();
        let in_use = crate::disk::run_blocking(&*self.inner.disk, move || Ok(backend.size_in_use_bytes())).await;
        (size, in_use.unwrap_or(size))
    }

    /// Bytes still free on the file system of this member's data dir (`None`: not known).
    pub fn free_disk_bytes(&self) -> Option<u64> {
        self.inner.disk.free_bytes()
    }

    /// Rewrites this member's kv store into a fresh file so the space compaction freed goes back to the file
    /// system (see `defrag`); applies and reads go on meanwhile.
    pub async fn defragment(&self) -> Result<DefragReport> {
        self.inner.defragmenter.run().await.map_err(|e| Error::storage("defragmenting the kv store", e))
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
        self.handle_peer_message_from(bytes, &any_sender()).await
    }

    /// As [`RaftNode::handle_peer_message`], for a connection that may speak only for the members `may_send`
    /// accepts (peer identity from its certificate).
    pub async fn handle_peer_message_from(&self, bytes: Vec<u8>, may_send: &SenderCheck) -> Result<Vec<u8>> {
        self.check_running()?;
        dispatch(&self.inner.raft, &bytes, may_send, &self.inner.contact).await
    }

    /// Entry point for a leader's append stream (see [`Transport::append_stream`]): the decoded requests go
    /// to openraft in order, and the encoded answers come back in the same order.
    pub fn serve_append_stream(
        &self,
        requests: futures::stream::BoxStream<'static, Vec<u8>>,
    ) -> Result<futures::stream::BoxStream<'static, Vec<u8>>> {
        self.serve_append_stream_from(requests, any_sender())
    }

    /// As [`RaftNode::serve_append_stream`], for a connection that may speak only for the members `may_send`
    /// accepts: the stream ends at the first request of another leader.
    pub fn serve_append_stream_from(
        &self,
        requests: futures::stream::BoxStream<'static, Vec<u8>>,
        may_send: SenderCheck,
    ) -> Result<futures::stream::BoxStream<'static, Vec<u8>>> {
        self.check_running()?;
        Ok(crate::append_stream::serve(&self.inner.raft, requests, may_send, self.inner.contact.clone()))
    }

    /// The leader this member follows and the last append it received from it, or `None` when it follows no
    /// leader, leads itself, or has heard nothing from its leader since it started. How long ago that was is how
    /// long the leader has been silent (see [`crate::leader_contact`]).
    pub fn leader_contact(&self) -> Option<Contact> {
        let leader = self.current_leader().filter(|l| *l != self.id())?;
        self.inner.contact.last().filter(|c| c.leader == leader)
    }

    /// Stop openraft, wait until it has released the log store and state machine (so the same
    /// data dir can be reopened), and make the kv store durable. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // A node that stopped on a fatal error (a full disk) has no core left to stop: its files are let go all
        // the same, so the member can start again in this process.
        let stopped = self.inner.raft.shutdown().await.map_err(|e| Error::Fatal(format!("raft shutdown: {e}")));
        let released = self.inner.released.lock().take();
        if let Some((log, sm)) = released {
            if !log.wait(SHUTDOWN_RELEASE_TIMEOUT).await {
                tracing::warn!("raft log store still referenced after shutdown");
            }
            if !sm.wait(SHUTDOWN_RELEASE_TIMEOUT).await {
                tracing::warn!("state machine still referenced after shutdown");
            }
        }
        let mut kv = self.inner.kv.write();
        let result = stopped.and_then(|()| {
            // Applies left changes pending or committed with Durability::None; leave a clean, durable
            // state behind (the staged applied id is committed with the data).
            kv.commit(Vec::new()).map_err(|e| Error::storage("committing the kv store at shutdown", e))?;
            kv.backend().sync().map_err(|e| Error::storage("syncing the kv store at shutdown", e))
        });
        kv.backend().close();
        result
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
