//! The etcd `Lease` service. Grant and revoke go through Raft; keep-alives and time-to-live are answered by
//! the leader's [`Lessor`](crate::lessor::Lessor), which alone decides expiry, so a member that does not lead
//! carries them to the leader over the peer service.

use std::sync::Arc;

use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::lease_server::Lease;
use meridian_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_types::{EtcdError, LeaseId};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::to_status;
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

/// Proposes a revoke; applying it stops the lease's timer. Used by the service and by the expiry loop.
pub async fn revoke(member: &Member, id: LeaseId) -> Result<LeaseRevokeResponse, EtcdError> {
    let cmd = Cmd::LeaseRevoke(LeaseRevokeRequest { id: id.0 });
    match member.propose(RaftCommand { cmd: Some(cmd) }).await? {
        CommandResponse::LeaseRevoke(mut r) => {
            let rev = r.header.as_ref().map_or(0, |h| h.revision);
            r.header = Some(member.header(rev));
            Ok(r)
        }
        _ => Err(EtcdError::Internal("unexpected apply result for lease revoke".into())),
    }
}

/// Renews a lease on this member, which must run the lease clock (be the leader).
pub fn keep_alive_local(member: &Member, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
    if !member.lessor.is_leader() {
        return Err(EtcdError::NotLeader);
    }
    // etcd answers an unknown lease with TTL 0 rather than an error.
    let ttl = member.lessor.renew(LeaseId(id)).unwrap_or(0);
    Ok(LeaseKeepAliveResponse { header: Some(member.current_header()), id, ttl })
}

/// Renews a lease wherever the lease clock runs: here when leading, otherwise on the leader.
pub async fn keep_alive(member: &Member, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
    if member.lessor.is_leader() {
        return keep_alive_local(member, id);
    }
    let Some(leader) = member.remote_leader() else {
        return Err(if member.raft.current_leader().is_none() { EtcdError::NoLeader } else { EtcdError::NotLeader });
    };
    let mut resp = member.leader_client.keep_alive(&leader, id).await?;
    resp.header = Some(member.current_header());
    Ok(resp)
}

/// A lease's remaining time from this member's view: exact on the leader, the last checkpoint (or the full
/// TTL) elsewhere.
pub fn time_to_live_local(member: &Member, req: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
    let info = member.kv().read().lease(LeaseId(req.id));
    let header = Some(member.current_header());
    let Some(info) = info else {
        // etcd reports a lease that does not exist as TTL -1, not as an error.
        return LeaseTimeToLiveResponse { header, id: req.id, ttl: -1, ..Default::default() };
    };
    let remaining = member.lessor.remaining(LeaseId(req.id)).or(info.remaining).unwrap_or(info.ttl);
    LeaseTimeToLiveResponse {
        header,
        id: req.id,
        ttl: remaining,
        granted_ttl: info.ttl,
        keys: if req.keys { info.keys } else { Vec::new() },
    }
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(&self, request: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let mut req = request.into_inner();
        if req.ttl > 9_000_000_000 {
            return Err(to_status(EtcdError::LeaseTtlTooLarge));
        }
        req.ttl = self.member.lessor.effective_ttl(req.ttl);
        let resp = self.member.propose(RaftCommand { cmd: Some(Cmd::LeaseGrant(req)) }).await.map_err(to_status)?;
        match resp {
            CommandResponse::LeaseGrant(mut r) => {
                let rev = r.header.as_ref().map_or(0, |h| h.revision);
                r.header = Some(self.member.header(rev));
                Ok(Response::new(r))
            }
            _ => Err(Status::internal("etcdserver: unexpected apply result for lease grant")),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let id = LeaseId(request.into_inner().id);
        revoke(&self.member, id).await.map(Response::new).map_err(to_status)
    }

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<BoxStream<LeaseKeepAliveResponse>>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let member = self.member.clone();
        tokio::spawn(async move {
            while let Ok(Some(req)) = inbound.message().await {
                let reply = keep_alive(&member, req.id).await.map_err(to_status);
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        let member = &self.member;
        match member.remote_leader() {
            Some(leader) if !member.lessor.is_leader() => {
                let mut resp = member.leader_client.time_to_live(&leader, req).await.map_err(to_status)?;
                resp.header = Some(member.current_header());
                Ok(Response::new(resp))
            }
            _ => Ok(Response::new(time_to_live_local(member, &req))),
        }
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self.member.kv().read().leases().into_iter().map(|l| LeaseStatus { id: l.id.0 }).collect();
        Ok(Response::new(LeaseLeasesResponse { header: Some(self.member.current_header()), leases }))
    }
}
