//! The etcd `Cluster` service. This member runs a single-node cluster for now, so the member list is itself;
//! runtime membership changes arrive with multi-node clusters.

use std::sync::Arc;

use meridian_proto::etcdserverpb::cluster_server::Cluster;
use meridian_proto::etcdserverpb::{
    Member as PbMember, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest,
    MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::member::Member;

/// The Cluster service of one member.
pub struct ClusterService {
    member: Arc<Member>,
}

impl ClusterService {
    /// Serves membership calls on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        ClusterService { member }
    }

    fn members(&self) -> Vec<PbMember> {
        let cfg = &self.member.config;
        vec![PbMember {
            id: self.member.id().0,
            name: cfg.name.clone(),
            peer_ur_ls: vec![cfg.listen_peer.clone()],
            client_ur_ls: vec![cfg.listen_client.clone()],
            is_learner: false,
        }]
    }

    fn unsupported() -> Status {
        Status::unimplemented("etcdserver: membership changes need a multi-node cluster, which this build lacks")
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(&self, _request: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        Err(Self::unsupported())
    }

    async fn member_remove(
        &self,
        _request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(Self::unsupported())
    }

    async fn member_update(
        &self,
        _request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(Self::unsupported())
    }

    async fn member_list(&self, _request: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        // etcd 3.4 answers the member list without a revision in the header.
        Ok(Response::new(MemberListResponse { header: Some(self.member.header(0)), members: self.members() }))
    }

    async fn member_promote(
        &self,
        _request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(Self::unsupported())
    }
}
