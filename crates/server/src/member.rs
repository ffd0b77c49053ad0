//! The running member: its identity, its Raft node, watch hub and lessor, shared by every gRPC service.
//! Writes enter through [`Member::propose`], linearizable reads through [`Member::read_barrier`]; on a member
//! that does not lead, both are carried to the leader over the peer service (forwarded write, ReadIndex).

use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::{Error as ConsensusError, RaftNode, RedbBackend, Vote};
use meridian_kv::{Backend, CommandResponse, KvStore};
use meridian_proto::etcdserverpb::ResponseHeader;
use meridian_proto::meridianpb::{RaftCommand, RequestAuth};
use meridian_types::{EtcdError, NodeId};
use parking_lot::RwLock;
use prost::Message;

use crate::auth::{Authenticator, CallerSource};
use crate::config::ServerConfig;
use crate::failover_catalog::FailoverGroups;
use crate::lessor::Lessor;
use crate::peer_client::call_error::CallError;
use crate::peer_client::client::LeaderClient;
use crate::placement::PlacementHandle;
use crate::quota::Quota;
use crate::reach_state::ReachState;
use crate::watch_hub::{HeaderSource, WatchHub};

/// How many times a request follows a changed leader before giving up.
const LEADER_ATTEMPTS: usize = 5;

/// The store type every service reads.
pub type Store = KvStore<RedbBackend>;

/// Identity fields that go into every response header.
pub struct HeaderInfo {
    /// This member's id.
    pub member_id: NodeId,
    /// The cluster's id.
    pub cluster_id: u64,
    /// Reads the current Raft term.
    pub raft: RaftNode,
}

impl HeaderSource for HeaderInfo {
    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id.0,
            revision,
            raft_term: self.raft.term(),
        }
    }
}

/// Everything a request handler needs: one request's way to the leader (`propose`, `read_barrier`), and the
/// parts of this member the handlers read (each through a method; nothing outside replaces a part).
pub struct Member {
    config: ServerConfig,
    headers: Arc<HeaderInfo>,
    raft: RaftNode,
    hub: Arc<WatchHub<RedbBackend>>,
    lessor: Arc<Lessor>,
    leader_client: LeaderClient,
    placement: PlacementHandle,
    quota: Arc<Quota>,
    authenticator: Arc<Authenticator>,
    reach: Arc<ReachState>,
    failover: FailoverGroups,
    /// Set once this member has applied everything committed when it started (see [`Member::catch_up`]).
    caught_up: tokio::sync::watch::Sender<bool>,
}

/// The parts a [`Member`] is made of, as `run` assembles them.
pub struct MemberParts {
    /// The configuration this member runs with.
    pub config: ServerConfig,
    /// Response header fields.
    pub headers: Arc<HeaderInfo>,
    /// The Raft node (and through it, the local state machine).
    pub raft: RaftNode,
    /// Watchers on this member.
    pub hub: Arc<WatchHub<RedbBackend>>,
    /// The leader's lease clock (running while this member leads).
    pub lessor: Arc<Lessor>,
    /// Calls to the leader on behalf of clients of this member.
    pub leader_client: LeaderClient,
    /// Why the leader is where it is (leader placement driver), for status.
    pub placement: PlacementHandle,
    /// The backend quota writes are checked against.
    pub quota: Arc<Quota>,
    /// Who is calling: tokens, logins, password hashing.
    pub authenticator: Arc<Authenticator>,
    /// What this member measures of the others, and (on the leader) the reports it received.
    pub reach: Arc<ReachState>,
    /// The failover groups' catalog and clock.
    pub failover: FailoverGroups,
}

/// After a refusal: try again at this leader (remembering the error to answer if attempts run out), or answer.
enum Retry {
    With(Option<NodeId>, EtcdError),
    No(EtcdError),
}

/// The kv store's answer to a command, as the client sees it.
fn flatten(r: meridian_kv::Result<CommandResponse>) -> Result<CommandResponse, EtcdError> {
    match r {
        Ok(resp) => Ok(resp),
        Err(meridian_kv::Error::Etcd(e)) => Err(e),
        Err(other) => Err(EtcdError::Internal(other.to_string())),
    }
}

impl Member {
    /// A member of these parts.
    pub fn new(parts: MemberParts) -> Self {
        let MemberParts {
            config,
            headers,
            raft,
            hub,
            lessor,
            leader_client,
            placement,
            quota,
            authenticator,
            reach,
            failover,
        } = parts;
        let caught_up = tokio::sync::watch::Sender::new(false);
        Member {
            config,
            headers,
            raft,
            hub,
            lessor,
            leader_client,
            placement,
            quota,
            authenticator,
            reach,
            failover,
            caught_up,
        }
    }

    /// Runs once at start: takes read barriers until one succeeds, then lets serializable reads through. A
    /// member that restarts holds what it had applied before it stopped, which may be far behind the cluster
    /// (a key deleted meanwhile, a leader key another node took): answering from it would hand a client a past
    /// the cluster has left, which Patroni, reading serializably, once acted on and took a primary role back.
    /// etcd serves no client before its start-up entry is applied; this is the same floor: every read this
    /// member serves reflects at least everything committed when it started.
    pub async fn catch_up(self: Arc<Self>) {
        let retry = Duration::from_millis(self.config.timing.heartbeat_ms());
        while self.read_barrier().await.is_err() {
            tokio::time::sleep(retry).await;
        }
        self.caught_up.send_replace(true);
        tracing::info!("caught up with the cluster: serving serializable reads");
    }

    /// Waits (up to the request timeout) until this member has caught up since it started; serializable reads
    /// wait here. Past the timeout: etcd's "request timed out".
    pub async fn wait_caught_up(&self) -> Result<(), EtcdError> {
        let mut rx = self.caught_up.subscribe();
        match tokio::time::timeout(self.request_timeout(), rx.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(EtcdError::Timeout),
        }
    }

    /// What this member measures of the others, and (on the leader) the reports it received.
    pub fn reach(&self) -> &Arc<ReachState> {
        &self.reach
    }

    /// Tokens, logins and password hashing.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }

    /// The caller a request with `src` speaks for, against this member's auth store.
    pub fn caller(&self, src: &CallerSource) -> Result<RequestAuth, EtcdError> {
        let kv = self.kv().read();
        self.authenticator.caller(src, kv.auth())
    }

    /// The backend quota.
    pub fn quota(&self) -> &Arc<Quota> {
        &self.quota
    }

    /// The configuration this member runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The Raft node: membership changes, status, leadership (the state machine is [`Member::kv`]).
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// The watchers on this member.
    pub fn hub(&self) -> &Arc<WatchHub<RedbBackend>> {
        &self.hub
    }

    /// The leader's lease clock, which runs only while this member leads.
    pub fn lessor(&self) -> &Lessor {
        &self.lessor
    }

    /// Calls to the leader on behalf of this member's clients.
    pub fn leader_client(&self) -> &LeaderClient {
        &self.leader_client
    }

    /// Why the leader is where it is, and the leader's view of each datacenter.
    pub fn placement(&self) -> &PlacementHandle {
        &self.placement
    }

    /// The failover groups' catalog and clock.
    pub fn failover(&self) -> &FailoverGroups {
        &self.failover
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.headers.member_id
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        self.headers.header(revision)
    }

    /// A response header at the current revision.
    pub fn current_header(&self) -> ResponseHeader {
        let rev = self.kv().read().current_revision().0;
        self.header(rev)
    }

    /// The local state machine.
    pub fn kv(&self) -> &Arc<RwLock<Store>> {
        self.raft.kv()
    }

    /// Rejects requests whose encoding exceeds the configured limit, with etcd's error.
    pub fn check_size(&self, req: &impl Message) -> Result<(), EtcdError> {
        if req.encoded_len() > self.config.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        Ok(())
    }

    /// Replicates a command through Raft and returns what applying it produced. A member that does not lead
    /// forwards the command to the leader. While no leader is known (an election), the request waits for one,
    /// up to the request timeout, as etcd's do; only then is the answer etcd's "no leader".
    pub async fn propose(&self, cmd: RaftCommand) -> Result<CommandResponse, EtcdError> {
        self.quota.admit(&cmd, || self.kv().read().backend().size_bytes())?;
        let mut hint = self.leader_or_wait().await?;
        let mut last = EtcdError::NoLeader;
        for _ in 0..LEADER_ATTEMPTS {
            match hint {
                Some(leader) if leader != self.id() => {
                    let target = self.raft.member(leader).ok_or(EtcdError::NoLeader)?;
                    let seen = self.raft.vote();
                    match self.leader_client.forward(&target, cmd.clone()).await {
                        Err(e) => match self.after_remote_refusal(leader, seen, e).await? {
                            Retry::With(h, e) => (hint, last) = (h, e),
                            Retry::No(e) => return Err(e),
                        },
                        Ok(r) => return flatten(r),
                    }
                }
                _ => match (self.raft.vote(), self.raft.propose(cmd.clone()).await) {
                    (seen, Err(e)) => match self.after_local_refusal(seen, e).await? {
                        Retry::With(h, e) => (hint, last) = (h, e),
                        Retry::No(e) => return Err(e),
                    },
                    (_, Ok(r)) => return flatten(r),
                },
            }
        }
        Err(last)
    }

    /// Proposes this member's own decision, made as leader of `term` (a datacenter verdict, a failover switch), on
    /// this member only: never forwarded, and refused at apply unless its entry was appended in `term`, so a
    /// deposed leader's decision can never be committed by its successor.
    pub async fn propose_as_leader(&self, mut cmd: RaftCommand, term: u64) -> Result<CommandResponse, EtcdError> {
        cmd.require_term = term;
        flatten(self.raft.propose(cmd).await.map_err(EtcdError::from)?)
    }

    /// Waits until the local state machine reflects every write acknowledged before this call (ReadIndex).
    /// A member that does not lead asks the leader for the read index and waits until it has applied it.
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        let mut hint = self.leader_or_wait().await?;
        let mut last = EtcdError::NoLeader;
        for _ in 0..LEADER_ATTEMPTS {
            match hint {
                Some(leader) if leader != self.id() => {
                    let target = self.raft.member(leader).ok_or(EtcdError::NoLeader)?;
                    let seen = self.raft.vote();
                    match self.leader_client.read_index(&target).await {
                        Ok(index) => {
                            return self
                                .raft
                                .wait_applied(index, self.request_timeout())
                                .await
                                .map_err(EtcdError::from);
                        }
                        Err(e) => match self.after_remote_refusal(leader, seen, e).await? {
                            Retry::With(h, e) => (hint, last) = (h, e),
                            Retry::No(e) => return Err(e),
                        },
                    }
                }
                _ => match (self.raft.vote(), self.raft.read_barrier().await) {
                    (seen, Err(e)) => match self.after_local_refusal(seen, e).await? {
                        Retry::With(h, e) => (hint, last) = (h, e),
                        Retry::No(e) => return Err(e),
                    },
                    (_, Ok(())) => return Ok(()),
                },
            }
        }
        Err(last)
    }

    /// The leader to ask, when it is someone else.
    pub fn remote_leader(&self) -> Option<meridian_consensus::MemberRecord> {
        self.raft.current_leader().filter(|l| *l != self.id()).and_then(|l| self.raft.member(l))
    }

    /// Bound on one forwarded request.
    pub fn request_timeout(&self) -> Duration {
        crate::peer_client::channels::PeerTimeouts::from_election_ms(self.config.timing.election_ms()).request
    }

    /// What to do after a call to `leader` failed without an answer from the kv store (`seen`: this member's
    /// vote when the call left). Leadership moved while the request travelled: follow it. The member asked
    /// leads no more or does not lead yet (a leader handing over, a transfer's target before it wins): nothing
    /// was proposed, so wait for a leader established since the call left. The request never left this member
    /// (the leader's process is gone and refused the connection): wait for the next leader and send it there, so
    /// requests queued behind a dead leader are not failed. Anything else is the answer.
    async fn after_remote_refusal(&self, leader: NodeId, seen: Vote, e: CallError) -> Result<Retry, EtcdError> {
        Ok(match e {
            CallError::Etcd(EtcdError::NotLeader) => Retry::With(self.next_leader(leader).await, EtcdError::NotLeader),
            CallError::Etcd(EtcdError::NoLeader) => {
                let next = self.raft.established_leader_since(seen, self.request_timeout()).await;
                Retry::With(Some(next.ok_or(EtcdError::NoLeader)?), EtcdError::NoLeader)
            }
            CallError::NotSent => Retry::With(self.next_leader(leader).await, EtcdError::Timeout),
            CallError::Etcd(other) => Retry::No(other),
        })
    }

    /// What to do after this member's own Raft refused a request, before proposing it (`seen`: this member's
    /// vote when it asked). A leader handing over names its successor before the successor leads: wait until
    /// someone else leads, then go there. A member that is campaigning (say as a transfer's target), a leader
    /// stepping down whose successor is not established yet, or a leader the watchdog stopped (cut off, or just
    /// resumed from a pause) has no leader: wait, at most the request timeout, for one established since it
    /// asked ("any established leader" would be the refusing leader itself again). A paused leader learns of its
    /// successor with the first heartbeat it hears, and the request goes there; only a leader still cut off when
    /// the wait ends answers "no leader".
    async fn after_local_refusal(&self, seen: Vote, e: ConsensusError) -> Result<Retry, EtcdError> {
        Ok(match e {
            ConsensusError::NotLeader { leader: Some(l) } if l != self.id() => {
                let next = self.next_leader(self.id()).await.filter(|h| *h != self.id()).or(Some(l));
                Retry::With(next, EtcdError::NotLeader)
            }
            ConsensusError::NoLeader => {
                let next = self.raft.established_leader_since(seen, self.request_timeout()).await;
                Retry::With(Some(next.ok_or(EtcdError::NoLeader)?), EtcdError::NoLeader)
            }
            other => Retry::No(EtcdError::from(other)),
        })
    }

    /// The leader this member knows of; while it knows none (an election is under way), waits for one, at
    /// most the request timeout, then gives up with etcd's "no leader". A request held here has not been
    /// proposed, so it proceeds as if it had arrived once the new leader is known.
    async fn leader_or_wait(&self) -> Result<Option<NodeId>, EtcdError> {
        if let Some(leader) = self.raft.current_leader() {
            return Ok(Some(leader));
        }
        self.elected_or_no_leader().await
    }

    /// The leader once one is established (a member campaigning, which names itself, is not), waiting at most
    /// the request timeout; then etcd's "no leader".
    async fn elected_or_no_leader(&self) -> Result<Option<NodeId>, EtcdError> {
        match self.raft.established_leader(self.request_timeout()).await {
            Some(leader) => Ok(Some(leader)),
            None => Err(EtcdError::NoLeader),
        }
    }

    /// After `old` refused to lead: wait (at most an election timeout) for this member to learn of a
    /// different leader, and return whoever it believes leads then.
    async fn next_leader(&self, old: NodeId) -> Option<NodeId> {
        let mut rx = self.raft.leader_changes();
        let wait = Duration::from_millis(self.config.timing.election_ms());
        let _ = tokio::time::timeout(wait, rx.wait_for(|l| l.is_some_and(|l| l != old))).await;
        self.raft.current_leader()
    }
}
