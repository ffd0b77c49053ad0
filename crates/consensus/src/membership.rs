//! Runtime membership changes, with etcd's rules and errors on top of openraft's joint consensus.
//!
//! The decision ("is this change allowed, and what does it become in openraft terms?") is a pure
//! function, [`plan`], over a [`MembershipView`] taken from the leader's metrics; it is
//! table-tested below. Executing the plan is a `change_membership_if` guarded by the membership
//! log id the view was taken at, so two concurrent changes cannot both pass validation against
//! the same old membership.
//!
//! Only the leader can decide (it alone knows each learner's replication progress). Any other
//! member forwards the request to the leader it knows over the peer transport
//! ([`MembershipRequest`] rides in the same byte channel as Raft messages), so etcd's Cluster API
//! works on every member, learners included. A forwarded request is executed by the receiver or
//! answered with `NotLeader`; it is never forwarded twice.
//!
//! Semantics that follow etcd:
//! - `add_learner` returns once the membership entry naming the learner is committed; the new
//!   process may not be running yet (learners never count towards quorum, so nothing waits on it).
//! - `add_voter` adds the member immediately as a voter, as etcd's MemberAdd without `isLearner`
//!   does: it adds a learner, then starts the (joint) voter change and returns once that change is
//!   in the effective membership. As in etcd, the cluster's quorum now counts the new member, so a
//!   one-member cluster stops committing until the new member runs.
//! - `promote_learner` refuses a learner whose replication has not reached 90% of the leader's
//!   last log index (etcd's `readyPercent`), or which has never acknowledged any replication.
//! - `publish`: a member that joined with only a peer URL (MemberAdd knows nothing else) tells
//!   the leader its name, dc, zone and client URL once it runs, like etcd's publish on start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use meridian_types::NodeId;
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ChangeMembershipError, ClientWriteError, ForwardReason, RaftError};
use openraft::raft::Precondition;

mod plan;
mod wire;

use plan::{MembershipView, Plan, plan};
pub use plan::{learner_ready, valid_peer_url};
pub(crate) use wire::{MembershipReply, MembershipRequest};

use crate::error::{Error, MembershipError, Result};
use crate::raft::Raft;
use crate::types::LogId;

/// How long `add_voter` waits for the voter change to become effective on the leader.
const VOTER_EFFECTIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a membership change in flight to commit before trying again.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The leader's view, or `NotLeader`/`NoLeader` when this member does not lead.
fn leader_view(raft: &Raft) -> Result<(MembershipView, Option<LogId>)> {
    let rx = raft.metrics();
    let m = rx.borrow_watched();
    let Some(replication) = m.replication.as_ref() else {
        return Err(match m.current_leader {
            Some(l) if l != m.id => Error::NotLeader { leader: Some(NodeId(l)) },
            _ => Error::NoLeader,
        });
    };
    let membership = m.membership_config.membership();
    let view = MembershipView {
        voters: membership.voter_ids().collect(),
        nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        matched: replication.iter().map(|(id, l)| (*id, l.as_ref().map(|l| l.index()))).collect(),
        leader_last: m.last_log_index.unwrap_or(0),
    };
    Ok((view, *m.membership_config.log_id()))
}

/// Map openraft's answer to a membership write onto ours.
fn write_error(e: RaftError<crate::types::TypeConfig, ClientWriteError<crate::types::TypeConfig>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) if f.reason == ForwardReason::LeaseExpired => {
            Error::Unavailable("leader lease expired: no recent quorum acknowledgement".into())
        }
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => match f.leader_id {
            Some(l) => Error::NotLeader { leader: Some(NodeId(l)) },
            None => Error::NoLeader,
        },
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => Error::LeaderChanged,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::LearnerNotFound(_))) => {
            Error::Membership(MembershipError::MemberNotFound)
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
            Error::Unavailable(format!("another membership change is in progress: {p}"))
        }
        RaftError::APIError(ClientWriteError::PreconditionFailed(p)) => {
            Error::Unavailable(format!("membership changed concurrently; retry: {p}"))
        }
        RaftError::APIError(other) => Error::Unavailable(other.to_string()),
        RaftError::Fatal(f) => Error::Fatal(f.to_string()),
    }
}

/// Decide and execute `req` on this member, which must be the leader. A change still being
/// committed (for instance the voter change `add_voter` leaves running) is waited for once,
/// instead of refusing a request etcd would accept.
pub(crate) async fn execute_local(raft: &Raft, req: &MembershipRequest) -> Result<()> {
    match execute_once(raft, req).await {
        Err(Error::Unavailable(_)) if !membership_settled(raft) => {
            let wait = raft.wait(Some(SETTLE_TIMEOUT));
            let settled = wait.metrics(
                |m| m.committed_membership_config.log_id() == m.membership_config.log_id(),
                "the pending membership change to commit",
            );
            settled.await.map_err(|e| Error::Unavailable(format!("a membership change is still pending: {e}")))?;
            execute_once(raft, req).await
        }
        other => other,
    }
}

/// Whether the effective membership is committed (no change in flight).
fn membership_settled(raft: &Raft) -> bool {
    let rx = raft.metrics();
    let m = rx.borrow_watched();
    m.committed_membership_config.log_id() == m.membership_config.log_id()
}

async fn execute_once(raft: &Raft, req: &MembershipRequest) -> Result<()> {
    let (view, membership_log) = leader_view(raft)?;
    let guard = [Precondition::LastMembershipLogId { last_membership_log_id: membership_log }];
    match plan(&view, req).map_err(Error::Membership)? {
        Plan::Noop => Ok(()),
        Plan::Change(change) => {
            raft.change_membership_if(change, false, guard).await.map_err(write_error)?;
            Ok(())
        }
        Plan::AddVoter(id, member) => {
            let add = ChangeMembers::AddNodes(BTreeMap::from([(id, member)]));
            raft.change_membership_if(add, false, guard).await.map_err(write_error)?;
            add_learner_as_voter(raft, id).await
        }
    }
}

/// Start turning learner `id` into a voter and return once the voter change is in the leader's
/// effective membership. The change itself runs on: while the new member is not running, a
/// small cluster cannot commit the change (etcd behaves the same), and MemberAdd must still answer.
async fn add_learner_as_voter(raft: &Raft, id: u64) -> Result<()> {
    let r = raft.clone();
    let mut change = tokio::spawn(async move {
        r.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false).await.map_err(write_error)
    });
    let wait = raft.wait(Some(VOTER_EFFECTIVE_TIMEOUT));
    let effective = wait.metrics(
        |m| m.membership_config.membership().voter_ids().any(|v| v == id),
        "new voter in the effective membership",
    );
    tokio::select! {
        biased;
        done = &mut change => match done {
            Ok(r) => r.map(|_| ()),
            Err(e) => Err(Error::Fatal(format!("voter change task: {e}"))),
        },
        waited = effective => match waited {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::Unavailable(format!("voter change did not take effect: {e}"))),
        },
    }
}
