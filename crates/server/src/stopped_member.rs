//! What a member whose Raft node stopped still does for its clients. When the disk fills up before the space
//! watcher stops writes, a write fails with ENOSPC and the member's Raft node stops (`restart_in_place` starts it
//! again once there is room). Its state is then frozen at what it applied, and its view of the leader with it.
//!
//! - It raises its NOSPACE alarm through another member ([`raise_nospace`]), so that every member refuses writes
//!   that add data, as after a disk found below its reserve (`space_watch`, which clears the alarm once the member
//!   runs again with room).
//! - A ReadIndex from the leader would wait for entries it will never apply, so for a linearizable read it asks
//!   another member to answer the range from that member's own state, after that member's own read barrier
//!   (`meridianpb.Peer/Range`).
//!
//! Either goes to the leader it last knew first, then to every other voter in turn. A member that is the only voter answers from what it applied: nothing can have been committed
//! without it, and what it committed but did not apply was never acknowledged (a write is answered once applied),
//! so that write may still be ordered after the read. Serializable reads stay local.

use std::time::Duration;

use meridian_consensus::{MemberRecord, NodeStatus};
use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::{AlarmRequest, AlarmType, RangeRequest, RangeResponse};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::EtcdError;

use crate::member::Member;
use crate::peer_client::call_error::CallError;

/// Answers `req` (a linearizable range) for `member`, whose Raft node has stopped (see the module docs).
pub async fn range(member: &Member, req: RangeRequest) -> Result<RangeResponse, tonic::Status> {
    let status = member.raft().status();
    if status.voters.iter().all(|v| *v == member.id()) {
        return local_range(member, &req);
    }
    range_elsewhere(member, status, req).await.map_err(crate::error::to_status)
}

async fn range_elsewhere(member: &Member, status: NodeStatus, req: RangeRequest) -> Result<RangeResponse, EtcdError> {
    let mut last = EtcdError::NoLeader;
    for target in others_leader_first(member, &status) {
        match member.leader_client().range(&target, req.clone()).await {
            Ok(resp) => return Ok(resp),
            Err(CallError::Etcd(e)) => last = e,
            Err(CallError::NotSent) => {}
        }
    }
    Err(last)
}

/// Raises this member's NOSPACE alarm through another member: the leader applies it, or answers that it does not
/// lead and the next one is asked. Retries every second until one applies it.
pub async fn raise_nospace(member: &Member) {
    let req = AlarmRequest {
        action: AlarmAction::Activate as i32,
        member_id: member.id().0,
        alarm: AlarmType::Nospace as i32,
    };
    let cmd = RaftCommand { auth: None, cmd: Some(Cmd::Alarm(req)), ..Default::default() };
    loop {
        for target in others_leader_first(member, &member.raft().status()) {
            if let Ok(Ok(_)) = member.leader_client().forward(&target, cmd.clone()).await {
                tracing::warn!(through = %target.name, "raised this member's NOSPACE alarm: the cluster refuses writes that add data");
                return;
            }
        }
        tokio::time::sleep(RAISE_RETRY).await;
    }
}

/// Pause between rounds of [`raise_nospace`].
const RAISE_RETRY: Duration = Duration::from_secs(1);

/// The other voters, the leader this member last knew first (a stopped node's view is frozen, so it may be
/// stale: then the next one answers).
fn others_leader_first(member: &Member, status: &NodeStatus) -> Vec<MemberRecord> {
    let me = member.id();
    let leader = status.leader.filter(|l| *l != me);
    let rest = status.voters.iter().copied().filter(|v| *v != me && Some(*v) != leader);
    leader.into_iter().chain(rest).filter_map(|id| member.raft().member(id)).collect()
}

/// Answers `req` from this member's state after its read barrier (the serving half of [`range`]).
pub async fn range_here(member: &Member, req: &RangeRequest) -> Result<RangeResponse, tonic::Status> {
    if req.key.is_empty() {
        return Err(crate::error::to_status(EtcdError::EmptyKey));
    }
    if member.raft().is_stopped() {
        // Two members that both cannot apply must not send the read back and forth.
        return Err(crate::error::to_status(EtcdError::NoLeader));
    }
    member.read_barrier().await.map_err(crate::error::to_status)?;
    local_range(member, req)
}

/// `req` answered from what this member applied, with its header.
fn local_range(member: &Member, req: &RangeRequest) -> Result<RangeResponse, tonic::Status> {
    let mut resp = member.kv().read().range(req).map_err(crate::error::kv_status)?;
    let rev = resp.header.as_ref().map_or(0, |h| h.revision);
    resp.header = Some(member.header(rev));
    Ok(resp)
}
