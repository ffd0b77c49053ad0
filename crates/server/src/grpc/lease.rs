//! The etcd `Lease` service: a thin adapter over [`crate::lease`], where grant, revoke, keep-alive and
//! time-to-live are decided.

use std::sync::Arc;

use meridian_kv::PermKind;
use meridian_proto::etcdserverpb::lease_server::Lease;
use meridian_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use meridian_types::LeaseId;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::access;
use crate::error::to_status;
use crate::lease::{grant, keep_alive, revoke, time_to_live_local};
use crate::member::Member;

/// The Lease service of one member.
pub struct LeaseService {
    member: Arc<Member>,
}

impl LeaseService {
    /// Serves leases on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        LeaseService { member }
    }
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(&self, request: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        grant(&self.member, request.into_inner(), Some(who)).await.map(Response::new).map_err(to_status)
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let id = LeaseId(request.into_inner().id);
        revoke(&self.member, id, Some(who)).await.map(Response::new).map_err(to_status)
    }

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<BoxStream<LeaseKeepAliveResponse>>, Status> {
        access::user(&self.member, &request)?;
        let inbound = request.into_inner().map_while(Result::ok).map(|req| req.id);
        Ok(Response::new(Box::pin(keep_alive_stream(self.member.clone(), inbound))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let who = access::user(&self.member, &request)?;
        let req = request.into_inner();
        let member = &self.member;
        let list_keys = req.keys;
        if list_keys {
            // The keys are judged against this member's auth store: after a read barrier, as a linearizable range
            // is, so every permission change acknowledged before the call is seen.
            member.read_barrier().await.map_err(to_status)?;
        } else {
            member.wait_caught_up().await.map_err(to_status)?;
        }
        let resp = match member.remote_leader() {
            Some(leader) if !member.lessor().is_leader() => {
                let mut resp = member.leader_client().time_to_live(&leader, req).await.map_err(to_status)?;
                resp.header = Some(member.current_header());
                resp
            }
            _ => time_to_live_local(member, &req),
        };
        if list_keys {
            // Listing the attached keys reveals them: read permission on each is needed (etcd's CVE fix). Judged
            // on the keys the answer lists, which come from the leader when this member does not lead: its own
            // view of the lease may lag and name fewer keys.
            for key in &resp.keys {
                access::range(member, &who, key, &[], PermKind::Read)?;
            }
        }
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        access::user(&self.member, &request)?;
        let leases = self.member.kv().read().leases().into_iter().map(|l| LeaseStatus { id: l.id.0 }).collect();
        Ok(Response::new(LeaseLeasesResponse { header: Some(self.member.current_header()), leases }))
    }
}

/// Answers each lease id of `inbound` with a keep-alive, in order, until `inbound` ends, the answer is dropped,
/// or one fails (the gRPC stream and the JSON gateway's share this).
pub fn keep_alive_stream(
    member: Arc<Member>,
    inbound: impl Stream<Item = i64> + Send + 'static,
) -> ReceiverStream<Result<LeaseKeepAliveResponse, Status>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut inbound = std::pin::pin!(inbound);
        loop {
            let id = tokio::select! {
                id = inbound.next() => id,
                () = tx.closed() => None,
            };
            let Some(id) = id else { break };
            let reply = keep_alive(&member, id).await.map_err(to_status);
            let failed = reply.is_err();
            if tx.send(reply).await.is_err() || failed {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}
