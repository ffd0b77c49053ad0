//! Deliberate bugs the simulation plants to show that its checker finds them, behind one seam: `run` looks at
//! the choice once, while it assembles the member, and installs a decorator (around the Kv service or the apply
//! observer) or a consensus setting. The production path never tests for a bug, with one exception:
//! [`PlantedBug::LockSkipsWait`] lives inside the Lock recipe (`concurrency::mutex`), which `run` builds without
//! a decorator seam; [`configure`] turns it into the member's `ServerConfig::planted_lock_skips_wait`, a setting
//! no file or flag reaches, which the simulation applies to each member's configuration before `start_in`.
//! [`PlantedBug::DiscoveryIgnoresCritical`] is a lens `run` hands the discovery catalog's follower
//! ([`discovery_lens`]): every record passes through it on its way from the store into the catalog.

use std::sync::Arc;

use meridian_consensus::{ApplyObserver, LeaseChange};
use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::kv_server::Kv;
use meridian_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_proto::mvccpb::Event;
use meridian_types::{EtcdError, Revision};
use tonic::{Request, Response, Status};

use crate::config::ServerConfig;
use crate::error::to_status;
use crate::grpc::kv::KvService;
use crate::member::Member;

/// Deliberate bugs the simulation can plant to show that its checker finds them. Only code can select
/// one (no flag or config reaches it); a real server always runs with [`PlantedBug::None`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlantedBug {
    /// The correct server.
    #[default]
    None,
    /// A follower answers "linearizable" reads from its local state without asking the leader.
    StaleLinearizableReads,
    /// A serializable read shows the store one revision behind the revision its header reports, as a read
    /// from a view taken before the latest apply would.
    SerializableReadsOneBehind,
    /// The lease clock ignores applied grants, so a lease granted under the current leader never expires.
    UntimedLeaseGrants,
    /// A restarted leader resumes the term it led without an election, so it neither commits an entry of a
    /// new term before answering reads nor gets new log ids for what it appends after losing unsynced ones.
    ResumedLeaderSkipsElection,
    /// A member that does not lead forwards a client's put, delete or txn to the leader without its caller
    /// (`auth: None`, the server's own commands), so the permission check at apply is skipped.
    ForwardedWritesSkipAuth,
    /// The leader declares a datacenter down on the word of any one voter outside it, not a majority.
    VerdictFromMinority,
    /// The Lock service answers a waiter as soon as its key is enqueued, without waiting for the keys created
    /// before it (the holder's among them) to be deleted: two holders at once.
    LockSkipsWait,
    /// The discovery catalog reads a critical check record as passing, so answers include failing instances.
    DiscoveryIgnoresCritical,
}

/// The settings of `config` a planted bug needs (only [`PlantedBug::LockSkipsWait`] has one); the simulation
/// calls it on every member's configuration, next to passing the bug in `ServerEnv::planted_bug`.
pub fn configure(bug: PlantedBug, config: &mut ServerConfig) {
    config.planted_lock_skips_wait = bug == PlantedBug::LockSkipsWait;
}

/// The Kv service with a bug planted: range requests are bent before the real service sees them, or (for
/// [`PlantedBug::ForwardedWritesSkipAuth`]) a follower's writes are proposed without their caller.
pub(crate) struct PlantedKv {
    inner: KvService,
    member: Arc<Member>,
    bug: PlantedBug,
}

impl PlantedKv {
    /// `bug` planted in front of the Kv service of `member`.
    pub(crate) fn new(member: Arc<Member>, bug: PlantedBug) -> Self {
        PlantedKv { inner: KvService::new(member.clone()), member, bug }
    }
}

impl PlantedKv {
    /// Whether this member, not leading, would forward a write without its caller.
    fn forwards_without_caller(&self) -> bool {
        self.bug == PlantedBug::ForwardedWritesSkipAuth && self.member.raft().current_leader() != Some(self.member.id())
    }

    /// Replicates `cmd` as if the server itself had issued it: no caller, so apply judges nothing.
    async fn propose_as_server(&self, cmd: Cmd) -> Result<CommandResponse, Status> {
        self.member.propose(RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() }).await.map_err(to_status)
    }
}

#[tonic::async_trait]
impl Kv for PlantedKv {
    async fn range(&self, request: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        // The metadata goes back with the request: it carries the caller's token.
        let (metadata, extensions, mut req) = request.into_parts();
        match self.bug {
            // No ReadIndex: the follower answers from whatever it has applied.
            PlantedBug::StaleLinearizableReads if self.member.raft().current_leader() != Some(self.member.id()) => {
                req.serializable = true;
            }
            // The header still says the current revision: a historical read answers with the store's revision.
            PlantedBug::SerializableReadsOneBehind if req.serializable => {
                let current = self.member.kv().read().current_revision().0;
                if current > 1 {
                    req.revision = current - 1;
                }
            }
            _ => {}
        }
        self.inner.range(Request::from_parts(metadata, extensions, req)).await
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        if !self.forwards_without_caller() {
            return self.inner.put(request).await;
        }
        let req = request.into_inner();
        if req.key.is_empty() {
            return Err(to_status(EtcdError::EmptyKey));
        }
        let mut resp = match self.propose_as_server(Cmd::Put(req)).await? {
            CommandResponse::Put(resp) => resp,
            _ => return Err(Status::internal("unexpected apply result")),
        };
        resp.header = Some(self.member.header(resp.header.as_ref().map_or(0, |h| h.revision)));
        Ok(Response::new(resp))
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        if !self.forwards_without_caller() {
            return self.inner.delete_range(request).await;
        }
        let req = request.into_inner();
        if req.key.is_empty() {
            return Err(to_status(EtcdError::EmptyKey));
        }
        let mut resp = match self.propose_as_server(Cmd::DeleteRange(req)).await? {
            CommandResponse::DeleteRange(resp) => resp,
            _ => return Err(Status::internal("unexpected apply result")),
        };
        resp.header = Some(self.member.header(resp.header.as_ref().map_or(0, |h| h.revision)));
        Ok(Response::new(resp))
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        if !self.forwards_without_caller() {
            return self.inner.txn(request).await;
        }
        let req = request.into_inner();
        meridian_kv::check_txn_request(&req).map_err(to_status)?;
        let mut resp = match self.propose_as_server(Cmd::Txn(req)).await? {
            CommandResponse::Txn(resp) => resp,
            _ => return Err(Status::internal("unexpected apply result")),
        };
        resp.header = Some(self.member.header(resp.header.as_ref().map_or(0, |h| h.revision)));
        Ok(Response::new(resp))
    }

    async fn compact(&self, request: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        self.inner.compact(request).await
    }
}

/// How the discovery catalog sees the registry's records: as stored, or (for
/// [`PlantedBug::DiscoveryIgnoresCritical`]) with every critical check record read as passing.
pub(crate) fn discovery_lens(bug: PlantedBug) -> crate::discovery::follow::Lens {
    match bug {
        PlantedBug::DiscoveryIgnoresCritical => critical_as_passing,
        _ => crate::discovery::follow::as_stored,
    }
}

fn critical_as_passing(kv: &mut meridian_proto::mvccpb::KeyValue) {
    use meridian_registry::{CheckRecord, RegistryKey, Status, parse_key};
    if !matches!(parse_key(&kv.key), Ok(RegistryKey::Check(_))) {
        return;
    }
    let key = String::from_utf8_lossy(&kv.key).into_owned();
    if let Ok(mut record) = CheckRecord::decode(&key, &kv.value)
        && record.status == Status::Critical
    {
        record.status = Status::Passing;
        kv.value = record.encode();
    }
}

/// An apply observer that never tells the lease clock of a grant ([`PlantedBug::UntimedLeaseGrants`]).
pub(crate) struct UntimedGrants(pub(crate) Arc<dyn ApplyObserver>);

impl ApplyObserver for UntimedGrants {
    fn on_events(&self, revision: Revision, events: &[Event]) {
        self.0.on_events(revision, events);
    }

    fn on_lease(&self, change: LeaseChange) {
        if !matches!(change, LeaseChange::Granted { .. }) {
            self.0.on_lease(change);
        }
    }
}
