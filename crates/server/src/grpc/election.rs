//! The etcd `Election` service (`v3electionpb`): a thin adapter over [`crate::concurrency::election`] and
//! [`crate::concurrency::observe`]. Errors are answered as etcd's election service answers them
//! ([`relayed_status`]).

use std::sync::Arc;

use meridian_proto::v3electionpb::election_server::Election;
use meridian_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest,
    ResignResponse,
};
use meridian_types::LeaseId;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::auth::CallerSource;
use crate::concurrency::client::Caller;
use crate::concurrency::{election, observe};
use crate::error::relayed_status;
use crate::member::Member;

/// Leader changes buffered per Observe stream; the observer waits for the client beyond that.
const OBSERVE_BUFFER: usize = 16;

/// The Election service of one member.
pub struct ElectionService {
    member: Arc<Member>,
}

impl ElectionService {
    /// Serves elections on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        ElectionService { member }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Caller::authenticated(self.member.clone(), CallerSource::of(request)).map_err(relayed_status)
    }
}

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(&self, request: Request<CampaignRequest>) -> Result<Response<CampaignResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let answer = election::campaign(caller, &req.name, LeaseId(req.lease), &req.value).await;
        answer.map(Response::new).map_err(relayed_status)
    }

    async fn proclaim(&self, request: Request<ProclaimRequest>) -> Result<Response<ProclaimResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        election::proclaim(caller, req.leader, &req.value).await.map(Response::new).map_err(relayed_status)
    }

    async fn leader(&self, request: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        let caller = self.caller(&request)?;
        election::leader(caller, &request.into_inner().name).await.map(Response::new).map_err(relayed_status)
    }

    async fn observe(&self, request: Request<LeaderRequest>) -> Result<Response<BoxStream<LeaderResponse>>, Status> {
        // Not authenticated up front: as in etcd, a caller the reads refuse gets a stream that ends at once.
        let caller = Caller::unchecked(self.member.clone(), CallerSource::of(&request));
        let name = request.into_inner().name;
        let (tx, rx) = mpsc::channel(OBSERVE_BUFFER);
        tokio::spawn(observe::observe(caller, name, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }

    async fn resign(&self, request: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        let caller = self.caller(&request)?;
        election::resign(caller, request.into_inner().leader).await.map(Response::new).map_err(relayed_status)
    }
}
