//! The etcd `Lock` service (`v3lockpb`): a thin adapter over [`crate::concurrency::mutex`]. Errors are answered
//! as etcd's lock service answers them ([`relayed_status`]).

use std::sync::Arc;

use meridian_proto::v3lockpb::lock_server::Lock;
use meridian_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use meridian_types::LeaseId;
use tonic::{Request, Response, Status};

use crate::auth::CallerSource;
use crate::concurrency::client::Caller;
use crate::concurrency::mutex;
use crate::error::relayed_status;
use crate::member::Member;

/// The Lock service of one member.
pub struct LockService {
    member: Arc<Member>,
}

impl LockService {
    /// Serves locks on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        LockService { member }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Caller::authenticated(self.member.clone(), CallerSource::of(request)).map_err(relayed_status)
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        mutex::lock(caller, &req.name, LeaseId(req.lease)).await.map(Response::new).map_err(relayed_status)
    }

    async fn unlock(&self, request: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        let caller = self.caller(&request)?;
        mutex::unlock(caller, request.into_inner().key).await.map(Response::new).map_err(relayed_status)
    }
}
