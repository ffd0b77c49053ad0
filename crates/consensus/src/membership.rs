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

use meridian_types::{EtcdError, NodeId};
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ChangeMembershipError, ClientWriteError, ForwardReason, RaftError};
use openraft::raft::Precondition;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::node::{Raft, RaftNode};
use crate::types::{LogId, Member};

/// How long a forwarded membership request may take, including the joint change.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `add_voter` waits for the voter change to become effective on the leader.
const VOTER_EFFECTIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a membership change in flight to commit before trying again.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// etcd's readiness threshold for promotion, as a fraction of the leader's progress (9/10).
const READY_NUMERATOR: u128 = 9;
const READY_DENOMINATOR: u128 = 10;

/// Why a membership change was refused. Each maps onto the etcd error a client expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// No member has this id.
    #[error("member not found")]
    MemberNotFound,
    /// A member with this id already exists.
    #[error("member id already exists")]
    MemberExists,
    /// Another member already uses this peer URL.
    #[error("peer URL already exists")]
    PeerUrlExists,
    /// Only learners can be promoted.
    #[error("member is not a learner")]
    MemberNotLearner,
    /// The learner has not caught up with the leader.
    #[error("learner is not in sync with the leader")]
    LearnerNotReady,
    /// The peer URL is not `http(s)://host:port`.
    #[error("invalid peer URL")]
    MemberBadUrls,
}

impl From<MembershipError> for EtcdError {
    fn from(e: MembershipError) -> Self {
        match e {
            MembershipError::MemberNotFound => EtcdError::MemberNotFound,
            MembershipError::MemberExists => EtcdError::MemberExists,
            MembershipError::PeerUrlExists => EtcdError::PeerUrlExists,
            MembershipError::MemberNotLearner => EtcdError::MemberNotLearner,
            MembershipError::LearnerNotReady => EtcdError::LearnerNotReady,
            MembershipError::MemberBadUrls => EtcdError::MemberBadUrls,
        }
    }
}

/// A membership change request; also the payload forwarded to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MembershipRequest {
    AddLearner { id: u64, member: Member },
    AddVoter { id: u64, member: Member },
    Promote { id: u64 },
    Remove { id: u64 },
    Update { id: u64, peer_url: String },
    Publish { id: u64, member: Member },
}

/// The outcome of a forwarded request, as it crosses the wire.
#[derive(Serialize, Deserialize)]
pub(crate) enum MembershipReply {
    Ok,
    Refused(MembershipError),
    NotLeader(Option<u64>),
    NoLeader,
    LeaderChanged,
    Unavailable(String),
    Failed(String),
}

impl From<Result<()>> for MembershipReply {
    fn from(r: Result<()>) -> Self {
        match r {
            Ok(()) => MembershipReply::Ok,
            Err(Error::Membership(e)) => MembershipReply::Refused(e),
            Err(Error::NotLeader { leader }) => MembershipReply::NotLeader(leader.map(|l| l.0)),
            Err(Error::NoLeader) => MembershipReply::NoLeader,
            Err(Error::LeaderChanged) => MembershipReply::LeaderChanged,
            Err(Error::Unavailable(m)) => MembershipReply::Unavailable(m),
            Err(other) => MembershipReply::Failed(other.to_string()),
        }
    }
}

impl From<MembershipReply> for Result<()> {
    fn from(r: MembershipReply) -> Self {
        match r {
            MembershipReply::Ok => Ok(()),
            MembershipReply::Refused(e) => Err(Error::Membership(e)),
            MembershipReply::NotLeader(l) => Err(Error::NotLeader { leader: l.map(NodeId) }),
            MembershipReply::NoLeader => Err(Error::NoLeader),
            MembershipReply::LeaderChanged => Err(Error::LeaderChanged),
            MembershipReply::Unavailable(m) => Err(Error::Unavailable(m)),
            MembershipReply::Failed(m) => Err(Error::Transport(format!("leader failed the membership change: {m}"))),
        }
    }
}

/// What the leader knows when it decides: the effective membership and replication progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MembershipView {
    /// Voters of the effective membership (both halves of a joint config).
    pub voters: BTreeSet<u64>,
    /// Every member (voters and learners) with its record.
    pub nodes: BTreeMap<u64, Member>,
    /// Highest log index each member is known to hold (`None`: never acknowledged).
    pub matched: BTreeMap<u64, Option<u64>>,
    /// The leader's last log index.
    pub leader_last: u64,
}

/// What a request becomes in openraft terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One `change_membership` call.
    Change(ChangeMembers<u64, Member>),
    /// Add as learner, then start the voter change (see the module docs).
    AddVoter(u64, Member),
    /// Nothing to change (a publish that is already reflected).
    Noop,
}

/// Whether a learner is close enough to the leader to become a voter: it has acknowledged
/// replication at least once (`matched` is known) and holds at least 90% of the leader's log,
/// etcd's rule. Ready learners do not stall commits when they start counting toward quorum.
pub fn learner_ready(matched: Option<u64>, leader_last: u64) -> bool {
    match matched {
        None => false,
        Some(m) => u128::from(m) * READY_DENOMINATOR >= u128::from(leader_last) * READY_NUMERATOR,
    }
}

/// Whether `url` is a usable peer URL: `http://` or `https://`, a non-empty host and a port.
pub fn valid_peer_url(url: &str) -> bool {
    let rest = match url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) {
        Some(r) => r.trim_end_matches('/'),
        None => return false,
    };
    let Some((host, port)) = rest.rsplit_once(':') else { return false };
    let host_ok = !host.is_empty() && !host.contains('/') && !host.contains(char::is_whitespace);
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn url_taken(view: &MembershipView, url: &str, except: Option<u64>) -> bool {
    view.nodes.iter().any(|(id, m)| Some(*id) != except && same_url(&m.peer_url, url))
}

/// Decide a request against the membership the leader sees. Pure.
pub(crate) fn plan(view: &MembershipView, req: &MembershipRequest) -> std::result::Result<Plan, MembershipError> {
    use MembershipError::*;
    match req {
        MembershipRequest::AddLearner { id, member } | MembershipRequest::AddVoter { id, member } => {
            if !valid_peer_url(&member.peer_url) {
                return Err(MemberBadUrls);
            }
            // URL before id: ids are derived from the peer URL, so a reused URL would otherwise
            // always surface as an id clash, and etcd names the URL.
            if url_taken(view, &member.peer_url, None) {
                return Err(PeerUrlExists);
            }
            if view.nodes.contains_key(id) {
                return Err(MemberExists);
            }
            Ok(match req {
                MembershipRequest::AddVoter { .. } => Plan::AddVoter(*id, member.clone()),
                _ => Plan::Change(ChangeMembers::AddNodes(BTreeMap::from([(*id, member.clone())]))),
            })
        }
        MembershipRequest::Promote { id } => {
            if !view.nodes.contains_key(id) {
                return Err(MemberNotFound);
            }
            if view.voters.contains(id) {
                return Err(MemberNotLearner);
            }
            let matched = view.matched.get(id).copied().flatten();
            if !learner_ready(matched, view.leader_last) {
                return Err(LearnerNotReady);
            }
            Ok(Plan::Change(ChangeMembers::AddVoterIds(BTreeSet::from([*id]))))
        }
        MembershipRequest::Remove { id } => {
            if !view.nodes.contains_key(id) {
                return Err(MemberNotFound);
            }
            let ids = BTreeSet::from([*id]);
            // A voter leaves the voter set and (retain = false) the node set in one change; a
            // learner only has a node record to drop.
            Ok(Plan::Change(if view.voters.contains(id) {
                ChangeMembers::RemoveVoters(ids)
            } else {
                ChangeMembers::RemoveNodes(ids)
            }))
        }
        MembershipRequest::Update { id, peer_url } => {
            let Some(current) = view.nodes.get(id) else { return Err(MemberNotFound) };
            if !valid_peer_url(peer_url) {
                return Err(MemberBadUrls);
            }
            if url_taken(view, peer_url, Some(*id)) {
                return Err(PeerUrlExists);
            }
            if same_url(&current.peer_url, peer_url) {
                return Ok(Plan::Noop);
            }
            let updated = Member { peer_url: peer_url.clone(), ..current.clone() };
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(*id, updated)]))))
        }
        MembershipRequest::Publish { id, member } => {
            let Some(current) = view.nodes.get(id) else { return Err(MemberNotFound) };
            // The peer URL is the cluster's to change (MemberUpdate); the rest is the member's own.
            let published = Member { peer_url: current.peer_url.clone(), ..member.clone() };
            if &published == current {
                return Ok(Plan::Noop);
            }
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(*id, published)]))))
        }
    }
}

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

impl RaftNode {
    /// Add member `id` as a learner. Returns once the membership naming it is committed; the
    /// member's process need not be running.
    pub async fn add_learner(&self, id: NodeId, member: Member) -> Result<()> {
        self.membership(MembershipRequest::AddLearner { id: id.0, member }).await
    }

    /// Add member `id` as a voter at once (etcd's MemberAdd without `isLearner`).
    pub async fn add_voter(&self, id: NodeId, member: Member) -> Result<()> {
        self.membership(MembershipRequest::AddVoter { id: id.0, member }).await
    }

    /// Promote learner `id` to voter; refused with `LearnerNotReady` until it has caught up.
    pub async fn promote_learner(&self, id: NodeId) -> Result<()> {
        self.membership(MembershipRequest::Promote { id: id.0 }).await
    }

    /// Remove member `id` (voter or learner) from the cluster.
    pub async fn remove_member(&self, id: NodeId) -> Result<()> {
        self.membership(MembershipRequest::Remove { id: id.0 }).await
    }

    /// Change the peer URL of member `id`.
    pub async fn update_member(&self, id: NodeId, peer_url: String) -> Result<()> {
        self.membership(MembershipRequest::Update { id: id.0, peer_url }).await
    }

    /// Record this member's own name, dc, zone and client URL in the membership (its peer URL
    /// stays as the cluster knows it). A no-op when already recorded.
    pub async fn publish_self(&self, member: Member) -> Result<()> {
        self.membership(MembershipRequest::Publish { id: self.id().0, member }).await
    }

    /// Execute on the leader: here when this member leads, else forwarded once to the leader.
    async fn membership(&self, req: MembershipRequest) -> Result<()> {
        self.check_running()?;
        match execute_local(&self.inner.raft, &req).await {
            Err(Error::NotLeader { leader: Some(leader) }) if leader != self.id() => {
                self.forward_membership(leader, &req).await
            }
            other => other,
        }
    }

    async fn forward_membership(&self, leader: NodeId, req: &MembershipRequest) -> Result<()> {
        let Some(member) = self.status().members.get(&leader).cloned() else {
            return Err(Error::NotLeader { leader: Some(leader) });
        };
        let payload = crate::transport::membership_request(req)?;
        let sent = tokio::time::timeout(FORWARD_TIMEOUT, self.inner.transport.send(leader, &member, payload)).await;
        let bytes = match sent {
            Err(_) => return Err(Error::Unavailable(format!("membership request to leader {leader} timed out"))),
            // The leader is known but unreachable: let the client retry elsewhere with the hint.
            Ok(Err(_)) => return Err(Error::NotLeader { leader: Some(leader) }),
            Ok(Ok(b)) => b,
        };
        crate::transport::membership_reply(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    fn m(url: &str) -> Member {
        Member { peer_url: url.into(), ..Default::default() }
    }

    /// Voters 1, 2, 3 and learner 4; the leader is at index 100, learner 4 at 50.
    fn view() -> MembershipView {
        MembershipView {
            voters: BTreeSet::from([1, 2, 3]),
            nodes: (1..=4).map(|i| (i, m(&format!("http://127.0.0.{i}:2380")))).collect(),
            matched: BTreeMap::from([(2, Some(100)), (3, Some(99)), (4, Some(50))]),
            leader_last: 100,
        }
    }

    #[test]
    fn learner_readiness_follows_etcds_ninety_percent_rule() {
        let cases = [
            (None, 0, false, "never acknowledged replication"),
            (None, 100, false, "never acknowledged replication, leader ahead"),
            (Some(0), 0, true, "empty logs on both sides"),
            (Some(100), 100, true, "fully caught up"),
            (Some(90), 100, true, "exactly at 90%"),
            (Some(89), 100, false, "just below 90%"),
            (Some(8), 10, false, "small logs: 80%"),
            (Some(9), 10, true, "small logs: 90%"),
            (Some(u64::MAX), u64::MAX, true, "no overflow at the top"),
            (Some(u64::MAX / 2), u64::MAX, false, "no overflow, half way"),
        ];
        for (matched, last, want, why) in cases {
            assert_eq!(learner_ready(matched, last), want, "{why}");
        }
    }

    #[test]
    fn peer_urls_are_validated() {
        let cases = [
            ("http://127.0.0.1:2380", true),
            ("https://node-4.example:2380/", true),
            ("http://[::1]:2380", true),
            ("127.0.0.1:2380", false),
            ("http://127.0.0.1", false),
            ("http://:2380", false),
            ("http://127.0.0.1:0", false),
            ("http://127.0.0.1:99999", false),
            ("unix://x:1", false),
            ("", false),
        ];
        for (url, want) in cases {
            assert_eq!(valid_peer_url(url), want, "{url}");
        }
    }

    #[test]
    fn plans_follow_etcds_rules() {
        use MembershipError::*;
        use MembershipRequest::*;
        let new = m("http://127.0.0.9:2380");
        let cases: Vec<(MembershipRequest, std::result::Result<Plan, MembershipError>, &str)> = vec![
            (
                AddLearner { id: 9, member: new.clone() },
                Ok(Plan::Change(ChangeMembers::AddNodes(BTreeMap::from([(9, new.clone())])))),
                "add a learner",
            ),
            (AddVoter { id: 9, member: new.clone() }, Ok(Plan::AddVoter(9, new.clone())), "add a voter"),
            (AddLearner { id: 2, member: new.clone() }, Err(MemberExists), "duplicate id"),
            (AddVoter { id: 9, member: m("http://127.0.0.2:2380/") }, Err(PeerUrlExists), "duplicate peer URL"),
            (AddLearner { id: 9, member: m("not a url") }, Err(MemberBadUrls), "bad URL"),
            (Promote { id: 7 }, Err(MemberNotFound), "promote unknown"),
            (Promote { id: 2 }, Err(MemberNotLearner), "promote a voter"),
            (Promote { id: 4 }, Err(LearnerNotReady), "promote a learner at 50%"),
            (Remove { id: 7 }, Err(MemberNotFound), "remove unknown"),
            (Remove { id: 3 }, Ok(Plan::Change(ChangeMembers::RemoveVoters(BTreeSet::from([3])))), "remove a voter"),
            (Remove { id: 4 }, Ok(Plan::Change(ChangeMembers::RemoveNodes(BTreeSet::from([4])))), "remove a learner"),
            (Update { id: 7, peer_url: "http://127.0.0.7:2380".into() }, Err(MemberNotFound), "update unknown"),
            (Update { id: 3, peer_url: "http://127.0.0.2:2380".into() }, Err(PeerUrlExists), "update to a used URL"),
            (Update { id: 3, peer_url: "nope".into() }, Err(MemberBadUrls), "update to a bad URL"),
            (Update { id: 3, peer_url: "http://127.0.0.3:2380/".into() }, Ok(Plan::Noop), "update to the same URL"),
            (
                Update { id: 3, peer_url: "http://127.0.0.33:2380".into() },
                Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(3, m("http://127.0.0.33:2380"))])))),
                "update the URL",
            ),
            (Publish { id: 7, member: new.clone() }, Err(MemberNotFound), "publish unknown"),
        ];
        let v = view();
        for (req, want, why) in cases {
            assert_eq!(plan(&v, &req), want, "{why}");
        }
    }

    #[test]
    fn promotion_is_allowed_once_the_learner_caught_up() {
        let mut v = view();
        v.matched.insert(4, Some(95));
        assert_eq!(
            plan(&v, &MembershipRequest::Promote { id: 4 }),
            Ok(Plan::Change(ChangeMembers::AddVoterIds(BTreeSet::from([4]))))
        );
        v.matched.remove(&4);
        assert_eq!(plan(&v, &MembershipRequest::Promote { id: 4 }), Err(MembershipError::LearnerNotReady));
    }

    #[test]
    fn publish_keeps_the_peer_url_and_is_idempotent() {
        let v = view();
        let named = Member {
            name: "n4".into(),
            dc: "dc-c".into(),
            zone: "z1".into(),
            peer_url: "http://elsewhere:1".into(),
            client_url: "http://127.0.0.4:2379".into(),
        };
        let want = Member { peer_url: "http://127.0.0.4:2380".into(), ..named.clone() };
        assert_eq!(
            plan(&v, &MembershipRequest::Publish { id: 4, member: named.clone() }),
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(4, want.clone())]))))
        );
        let mut after = v.clone();
        after.nodes.insert(4, want);
        assert_eq!(plan(&after, &MembershipRequest::Publish { id: 4, member: named }), Ok(Plan::Noop));
    }

    #[test]
    fn replies_round_trip_through_the_wire() {
        let cases = [
            Ok(()),
            Err(Error::Membership(MembershipError::LearnerNotReady)),
            Err(Error::NotLeader { leader: Some(NodeId(3)) }),
            Err(Error::NoLeader),
            Err(Error::LeaderChanged),
            Err(Error::Unavailable("x".into())),
        ];
        for case in cases {
            let bytes = encode(&MembershipReply::from(case.clone())).unwrap();
            let back: MembershipReply = decode(&bytes).unwrap();
            assert_eq!(Result::<()>::from(back), case);
        }
    }
}
