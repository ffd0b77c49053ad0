//! The live members the check assignment is computed over: the Raft membership's members with their datacenter
//! and zone, minus those this member's reachability probes find unreachable, always including this member.
//!
//! A peer that has never answered a probe counts as live for a short grace after probing began (a member that
//! has just started has not heard from anyone yet, and must not take every check for itself meanwhile); after
//! that, and for a peer that answered once and then went silent, the reachability table's verdict decides.
//! Pure: [`live_from`] is fed the membership and the report; [`live`] reads them from the member.

use std::collections::BTreeMap;

use meridian_consensus::MemberRecord;
use meridian_failover::Report;
use meridian_registry::LiveMember;
use meridian_types::{DcName, MemberName, NodeId, ZoneName};

use crate::member::Member;

/// How long a peer that never answered a probe still counts as live.
pub const UNANSWERED_GRACE_MS: u64 = 3_000;

/// The live members, from the membership `members`, this member's id `me` and its reachability `report`.
pub fn live_from(members: &BTreeMap<NodeId, MemberRecord>, me: NodeId, report: &Report) -> Vec<LiveMember> {
    members
        .iter()
        .filter(|(id, _)| {
            **id == me
                || report
                    .peers
                    .iter()
                    .find(|p| p.member == **id)
                    .is_none_or(|p| p.reachable || (p.rtt_ms.is_none() && p.silent_ms < UNANSWERED_GRACE_MS))
        })
        .map(|(_, record)| live_member(record))
        .collect()
}

/// The assignment's view of one member record.
pub fn live_member(record: &MemberRecord) -> LiveMember {
    LiveMember {
        name: MemberName(record.name.clone()),
        dc: DcName(record.dc.clone()),
        zone: (!record.zone.is_empty()).then(|| ZoneName(record.zone.clone())),
    }
}

/// The live members as `member` sees them now.
pub fn live(member: &Member) -> Vec<LiveMember> {
    let status = member.raft().status();
    let mut members = status.members;
    // A member that has not learnt the membership yet still runs checks as itself.
    let config = member.config();
    members.entry(member.id()).or_insert_with(|| MemberRecord {
        name: config.name.clone(),
        dc: config.dc.0.clone(),
        zone: config.zone.0.clone(),
        peer_url: String::new(),
        client_url: String::new(),
    });
    live_from(&members, member.id(), &member.reach().own_report())
}

#[cfg(test)]
mod tests {
    use meridian_failover::PeerSeen;

    use super::*;

    fn record(name: &str, dc: &str, zone: &str) -> MemberRecord {
        MemberRecord {
            name: name.into(),
            dc: dc.into(),
            zone: zone.into(),
            peer_url: String::new(),
            client_url: String::new(),
        }
    }

    fn seen(member: u64, reachable: bool, silent_ms: u64, rtt_ms: Option<u64>) -> PeerSeen {
        PeerSeen { member: NodeId(member), reachable, silent_ms, rtt_ms }
    }

    #[test]
    fn unreachable_peers_are_left_out_and_this_member_never_is() {
        let members: BTreeMap<NodeId, MemberRecord> = [
            (NodeId(1), record("a1", "dc-a", "z1")),
            (NodeId(2), record("a2", "dc-a", "")),
            (NodeId(3), record("b1", "dc-b", "z1")),
            (NodeId(4), record("b2", "dc-b", "z1")),
            (NodeId(5), record("c1", "dc-c", "z1")),
        ]
        .into();
        let report = Report {
            reporter: NodeId(1),
            peers: vec![
                // This member appears unreachable to itself only through a bad report: it stays.
                seen(1, false, 10_000, Some(1)),
                seen(2, true, 10, Some(1)),
                // Answered once, silent since: gone.
                seen(3, false, 5_000, Some(2)),
                // Never answered, probing just began: still live.
                seen(4, false, 100, None),
                // Never answered for longer than the grace: gone.
                seen(5, false, UNANSWERED_GRACE_MS, None),
            ],
        };
        let live = live_from(&members, NodeId(1), &report);
        let names: Vec<&str> = live.iter().map(|m| m.name.0.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b2"]);
        assert_eq!(live[1].zone, None, "an empty zone is no zone");
        assert_eq!(live[0].zone, Some(ZoneName::from("z1")));
    }
}
