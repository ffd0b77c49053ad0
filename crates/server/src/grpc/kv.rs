//! The etcd `KV` service: ranges are answered from the local state machine (after a ReadIndex barrier unless
//! serializable), writes are validated, size-checked and replicated through Raft.

use std::sync::Arc;

use meridian_kv::CommandResponse;
use meridian_kv::PermKind;
use meridian_proto::etcdserverpb::kv_server::Kv;
use meridian_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use meridian_proto::meridianpb::{RaftCommand, RequestAuth, raft_command::Cmd};
use meridian_types::EtcdError;
use tonic::{Request, Response, Status};

use crate::access;
use crate::error::to_status;
use crate::member::Member;
use crate::stopped_member;

/// The KV service of one member.
pub struct KvService {
    member: Arc<Member>,
}

impl KvService {
    /// Serves KV requests on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        KvService { member }
    }

    /// Replicates `cmd` and answers with the response `pick` takes out of the apply result (any other kind is an
    /// internal error), its header stamped with this member's identity at the revision the apply produced.
    async fn replicate<T>(
        &self,
        who: RequestAuth,
        cmd: Cmd,
        pick: impl FnOnce(CommandResponse) -> Result<T, CommandResponse>,
        header: impl FnOnce(&mut T) -> &mut Option<ResponseHeader>,
    ) -> Result<Response<T>, Status> {
        // Refused here as well as at apply, so a write under /meridian/ never takes a log entry.
        meridian_kv::check_client_command(&cmd).map_err(to_status)?;
        let applied = self
            .member
            .propose(RaftCommand { auth: Some(who), cmd: Some(cmd), ..Default::default() })
            .await
            .map_err(to_status)?;
        let mut resp = pick(applied).map_err(|other| unexpected(&other))?;
        stamp(&self.member, header(&mut resp));
        Ok(Response::new(resp))
    }
}

/// Sets this member's header fields, keeping the revision the response was produced at.
fn stamp(member: &Member, header: &mut Option<ResponseHeader>) {
    let rev = header.as_ref().map_or(0, |h| h.revision);
    *header = Some(member.header(rev));
}

fn unexpected(resp: &CommandResponse) -> Status {
    to_status(EtcdError::Internal(format!("unexpected apply result {}", variant_name(resp))))
}

fn variant_name(resp: &CommandResponse) -> &'static str {
    match resp {
        CommandResponse::Put(_) => "put",
        CommandResponse::DeleteRange(_) => "delete",
        CommandResponse::Txn(_) => "txn",
        CommandResponse::Compaction(_) => "compaction",
        CommandResponse::LeaseGrant(_) => "lease grant",
        CommandResponse::LeaseRevoke(_) => "lease revoke",
        CommandResponse::LeaseCheckpoint => "lease checkpoint",
        CommandResponse::Alarm(_) => "alarm",
        CommandResponse::Auth => "auth",
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, request: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let req = request.into_inner();
        if req.key.is_empty() {
            return Err(to_status(EtcdError::EmptyKey));
        }
        if req.serializable {
            // Not before this member caught up with what was committed when it started.
            self.member.wait_caught_up().await.map_err(to_status)?;
        } else if self.member.raft().is_stopped() {
            // It cannot apply (a full disk stopped its Raft node): another member answers.
            let resp = stopped_member::range(&self.member, req.clone()).await?;
            access::range(&self.member, &who, &req.key, &req.range_end, PermKind::Read)?;
            return Ok(Response::new(resp));
        } else {
            self.member.read_barrier().await.map_err(to_status)?;
        }
        // Judged after the barrier, so a linearizable read sees every permission change acknowledged before it.
        access::range(&self.member, &who, &req.key, &req.range_end, PermKind::Read)?;
        let mut resp = {
            let kv = self.member.kv().read();
            kv.range(&req).map_err(crate::error::kv_status)?
        };
        stamp(&self.member, &mut resp.header);
        Ok(Response::new(resp))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let req = request.into_inner();
        self.member.check_size(&req).map_err(to_status)?;
        if req.key.is_empty() {
            return Err(to_status(EtcdError::EmptyKey));
        }
        let pick = |applied| match applied {
            CommandResponse::Put(resp) => Ok(resp),
            other => Err(other),
        };
        self.replicate(who, Cmd::Put(req), pick, |resp| &mut resp.header).await
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let req = request.into_inner();
        self.member.check_size(&req).map_err(to_status)?;
        if req.key.is_empty() {
            return Err(to_status(EtcdError::EmptyKey));
        }
        let pick = |applied| match applied {
            CommandResponse::DeleteRange(resp) => Ok(resp),
            other => Err(other),
        };
        self.replicate(who, Cmd::DeleteRange(req), pick, |resp| &mut resp.header).await
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let req = request.into_inner();
        self.member.check_size(&req).map_err(to_status)?;
        // etcd's checks before a txn reaches Raft.
        meridian_kv::check_txn_request(&req).map_err(to_status)?;
        let pick = |applied| match applied {
            CommandResponse::Txn(resp) => Ok(resp),
            other => Err(other),
        };
        self.replicate(who, Cmd::Txn(req), pick, |resp| &mut resp.header).await
    }

    async fn compact(&self, request: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        let who = access::caller(&self.member, &request)?;
        let req = request.into_inner();
        let pick = |applied| match applied {
            CommandResponse::Compaction(resp) => Ok(resp),
            other => Err(other),
        };
        self.replicate(who, Cmd::Compaction(req), pick, |resp| &mut resp.header).await
    }
}
