//! The pure half of a membership change: is it allowed by etcd's rules, and what does it become in openraft
//! terms? [`plan`] decides over a [`MembershipView`] taken from the leader's metrics; it is table-tested here.

use std::collections::{BTreeMap, BTreeSet};

use openraft::ChangeMembers;

use super::wire::MembershipRequest;
use crate::error::MembershipError;
use crate::types::MemberRecord;

/// etcd's readiness threshold for promotion, as a fraction of the leader's progress (9/10).
const READY_NUMERATOR: u128 = 9;
const READY_DENOMINATOR: u128 = 10;

/// What the leader knows when it decides: the effective membership and replication progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MembershipView {
    /// Voters of the effective membership (both halves of a joint config).
    pub voters: BTreeSet<u64>,
    /// Every member (voters and learners) with its record.
    pub nodes: BTreeMap<u64, MemberRecord>,
    /// Highest log index each member is known to hold (`None`: never acknowledged).
    pub matched: BTreeMap<u64, Option<u64>>,
    /// The leader's last log index.
    pub leader_last: u64,
}

/// What a request becomes in openraft terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One `change_membership` call.
    Change(ChangeMembers<u64, MemberRecord>),
    /// Add as learner, then start the voter change (see the module docs).
    AddVoter(u64, MemberRecord),
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
            let updated = MemberRecord { peer_url: peer_url.clone(), ..current.clone() };
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(*id, updated)]))))
        }
        MembershipRequest::Publish { id, member } => {
            let Some(current) = view.nodes.get(id) else { return Err(MemberNotFound) };
            // The peer URL is the cluster's to change (MemberUpdate); the rest is the member's own.
            let published = MemberRecord { peer_url: current.peer_url.clone(), ..member.clone() };
            if &published == current {
                return Ok(Plan::Noop);
            }
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(*id, published)]))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(url: &str) -> MemberRecord {
        MemberRecord { peer_url: url.into(), ..Default::default() }
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
        let named = MemberRecord {
            name: "n4".into(),
            dc: "dc-c".into(),
            zone: "z1".into(),
            peer_url: "http://elsewhere:1".into(),
            client_url: "http://127.0.0.4:2379".into(),
        };
        let want = MemberRecord { peer_url: "http://127.0.0.4:2380".into(), ..named.clone() };
        assert_eq!(
            plan(&v, &MembershipRequest::Publish { id: 4, member: named.clone() }),
            Ok(Plan::Change(ChangeMembers::SetNodes(BTreeMap::from([(4, want.clone())]))))
        );
        let mut after = v.clone();
        after.nodes.insert(4, want);
        assert_eq!(plan(&after, &MembershipRequest::Publish { id: 4, member: named }), Ok(Plan::Noop));
    }
}
