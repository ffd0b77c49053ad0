//! Deliberate bugs the simulation plants to show that its checker finds them, behind one seam: `run` looks at
//! the choice once, while it assembles the member, and installs a decorator (around the Kv service or the apply
//! observer) or a consensus setting. The production path never tests for a bug.

use std::sync::Arc;

use meridian_consensus::{ApplyObserver, LeaseChange};
use meridian_proto::etcdserverpb::kv_server::Kv;
use meridian_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use meridian_proto::mvccpb::Event;
use meridian_types::Revision;
use tonic::{Request, Response, Status};

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
}

/// The Kv service with a read bug planted: range requests are bent before the real service sees them.
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

#[tonic::async_trait]
impl Kv for PlantedKv {
    async fn range(&self, request: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let mut req = request.into_inner();
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
        self.inner.range(Request::new(req)).await
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.inner.put(request).await
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.inner.delete_range(request).await
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.inner.txn(request).await
    }

    async fn compact(&self, request: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        self.inner.compact(request).await
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
