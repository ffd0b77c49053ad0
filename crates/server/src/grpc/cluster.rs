//! The etcd `Cluster` service. The member list is the Raft membership (every member learns it from the log);
//! runtime membership changes are not served yet.

use std::sync::Arc;

use meridian_consensus::NodeStatus;
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
        member_list(&self.member.raft.status())
    }

    fn unsupported() -> Status {
        Status::unimplemented("etcdserver: membership changes need a multi-node cluster, which this build lacks")
    }
}

/// The etcd member list of a Raft membership, ascending by id: names and URLs from the membership entries,
/// `is_learner` for non-voters.
pub fn member_list(status: &NodeStatus) -> Vec<PbMember> {
    status
        .members
        .iter()
        .map(|(id, m)| PbMember {
            id: id.0,
            name: m.name.clone(),
            peer_ur_ls: vec![m.peer_url.clone()],
            client_ur_ls: vec![m.client_url.clone()],
            is_learner: status.learners.contains(id),
        })
        .collect()
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
