//! The etcd `Cluster` service over the Raft membership: MemberAdd (voter or learner), MemberRemove,
//! MemberUpdate, MemberPromote and MemberList. Changes are decided and executed by the leader
//! (`RaftNode::add_learner` & co. forward to it), so every member, learners included, serves them.
//!
//! As in etcd, a member added by MemberAdd is known only by its peer URL: its id is derived from the
//! first peer URL (`identity::member_id`, the same id the new process derives for itself), and its
//! name and client URL stay empty until the process starts and publishes them (see `publish`).
//! The Raft membership records one peer URL per member; extra peer URLs are validated and dropped.

use std::sync::Arc;

use meridian_consensus::{MemberRecord, NodeStatus, valid_peer_url};
use meridian_proto::etcdserverpb::cluster_server::Cluster;
use meridian_proto::etcdserverpb::{
    Member as PbMember, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest,
    MemberUpdateResponse,
};
use meridian_types::{EtcdError, NodeId};
use tonic::{Request, Response, Status};

use crate::access;
use crate::error::to_status;
use crate::identity;
use crate::member::Member;

/// The Cluster service of one member.
pub struct ClusterService {
    member: Arc<Member>,
}

/// One member as etcd lists it.
fn pb_member(id: NodeId, m: &MemberRecord, is_learner: bool) -> PbMember {
    let urls = |u: &str| if u.is_empty() { vec![] } else { vec![u.to_owned()] };
    PbMember {
        id: id.0,
        name: m.name.clone(),
        peer_ur_ls: urls(&m.peer_url),
        client_ur_ls: urls(&m.client_url),
        is_learner,
    }
}

/// Every member of the effective membership, in id order.
pub fn members_of(status: &NodeStatus) -> Vec<PbMember> {
    status.members.iter().map(|(id, m)| pb_member(*id, m, status.learners.contains(id))).collect()
}

/// The peer URL a MemberAdd/MemberUpdate names: all must be valid, the first is recorded.
fn first_valid_url(urls: &[String]) -> Result<String, Status> {
    match urls.first() {
        Some(first) if urls.iter().all(|u| valid_peer_url(u)) => Ok(first.clone()),
        _ => Err(to_status(EtcdError::MemberBadUrls)),
    }
}

fn consensus_status(e: meridian_consensus::Error) -> Status {
    to_status(EtcdError::from(e))
}

impl ClusterService {
    /// Serves membership calls on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        ClusterService { member }
    }

    fn members(&self) -> Vec<PbMember> {
        members_of(&self.member.raft().status())
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(&self, request: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        access::admin(&self.member, &request)?;
        let req = request.into_inner();
        let peer_url = first_valid_url(&req.peer_ur_ls)?;
        let id = identity::member_id(&peer_url);
        let record = MemberRecord { peer_url, ..Default::default() };
        let raft = &self.member.raft();
        let added = if req.is_learner {
            raft.add_learner(id, record.clone()).await
        } else {
            raft.add_voter(id, record.clone()).await
        };
        added.map_err(consensus_status)?;
        // The response lists the new member even if this member has not applied the change yet.
        let new = PbMember { peer_ur_ls: req.peer_ur_ls.clone(), ..pb_member(id, &record, req.is_learner) };
        let mut members = self.members();
        if !members.iter().any(|m| m.id == id.0) {
            members.push(new.clone());
        }
        Ok(Response::new(MemberAddResponse { header: Some(self.member.header(0)), member: Some(new), members }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        access::admin(&self.member, &request)?;
        let id = NodeId(request.into_inner().id);
        self.member.raft().remove_member(id).await.map_err(consensus_status)?;
        let members = self.members().into_iter().filter(|m| m.id != id.0).collect();
        Ok(Response::new(MemberRemoveResponse { header: Some(self.member.header(0)), members }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        access::admin(&self.member, &request)?;
        let req = request.into_inner();
        let peer_url = first_valid_url(&req.peer_ur_ls)?;
        self.member.raft().update_member(NodeId(req.id), peer_url).await.map_err(consensus_status)?;
        Ok(Response::new(MemberUpdateResponse { header: Some(self.member.header(0)), members: self.members() }))
    }

    async fn member_list(&self, request: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        access::user(&self.member, &request)?;
        // etcd 3.4 answers the member list from the member's own view, without a revision in the header.
        Ok(Response::new(MemberListResponse { header: Some(self.member.header(0)), members: self.members() }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        access::admin(&self.member, &request)?;
        let id = NodeId(request.into_inner().id);
        self.member.raft().promote_learner(id).await.map_err(consensus_status)?;
        Ok(Response::new(MemberPromoteResponse { header: Some(self.member.header(0)), members: self.members() }))
    }
}
