//! Who campaigns first when the leader is known to be dead, and when (design §4, "failover").
//!
//! A follower that sees its leader's process gone (its append stream ended and a connection attempt to the
//! leader's peer address was refused) need not wait out the election timeout. But if every surviving voter
//! campaigned at once they would split the vote and all wait a full timeout again. So the survivors take turns:
//! the voters are ranked by the leader preference of their datacenter (datacenters not listed rank after every
//! listed one), then by id, and the voter of rank `r` among the survivors campaigns `(r + 1/2) × step` after
//! the loss, only if no leader has appeared by then. The half step lets every survivor notice the loss (and stop
//! honouring the dead leader's lease) before the first campaign asks for its vote; whole steps between ranks
//! leave room for a campaign to finish before the next one starts. The first to campaign is also the one leader
//! placement would choose, so no transfer follows the election.
//!
//! A leader that is silent but not provably dead (paused, or cut off) is replaced the same way, one election
//! timeout after the silence began ([`silent_leader_delay`]).
//!
//! Pure: ids, datacenters and the preference in, a delay out.

use std::time::Duration;

use meridian_types::{DcName, NodeId};

/// The surviving voters in the order they campaign: by the position of their datacenter in `preference`
/// (unlisted datacenters last), then by id. `dead` is left out.
pub fn campaign_order(preference: &[DcName], voters: &[(NodeId, DcName)], dead: NodeId) -> Vec<NodeId> {
    let mut ranked: Vec<(usize, NodeId)> = voters
        .iter()
        .filter(|(id, _)| *id != dead)
        .map(|(id, dc)| (preference.iter().position(|p| p == dc).unwrap_or(preference.len()), *id))
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// How long after the leader's loss `me` campaigns, if no leader appeared meanwhile; `None` when `me` is not a
/// surviving voter (a learner, or the dead leader itself).
pub fn campaign_delay(
    preference: &[DcName],
    voters: &[(NodeId, DcName)],
    dead: NodeId,
    me: NodeId,
    step: Duration,
) -> Option<Duration> {
    let rank = campaign_order(preference, voters, dead).iter().position(|id| *id == me)?;
    Some(step / 2 + step * u32::try_from(rank).unwrap_or(u32::MAX))
}

/// How long `leader` must have been silent before `me` campaigns, when nothing shows that it is dead (it is
/// paused, or cut off: its sockets stay open): one election timeout for the first survivor in the order, and one
/// `step` more for each rank after it; `None` when `me` is not a surviving voter. By then every follower's lease
/// (two thirds of the election timeout) has run out, so the first campaign's pre-vote is granted by any member
/// that has not heard from the leader either, and refused by one that still does. Turns instead of a random
/// timer: the successor is the member placement would choose, and one election timeout after the silence, not
/// up to a third later.
pub fn silent_leader_delay(
    preference: &[DcName],
    voters: &[(NodeId, DcName)],
    leader: NodeId,
    me: NodeId,
    election: Duration,
    step: Duration,
) -> Option<Duration> {
    let rank = campaign_order(preference, voters, leader).iter().position(|id| *id == me)?;
    Some(election + step * u32::try_from(rank).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(name: &str) -> DcName {
        DcName(name.to_owned())
    }

    fn voters() -> Vec<(NodeId, DcName)> {
        vec![
            (NodeId(5), dc("dc-c")),
            (NodeId(4), dc("dc-b")),
            (NodeId(1), dc("dc-a")),
            (NodeId(3), dc("dc-b")),
            (NodeId(2), dc("dc-a")),
        ]
    }

    #[test]
    fn preferred_datacenters_go_first_then_lower_ids() {
        let pref = [dc("dc-a"), dc("dc-b")];
        assert_eq!(campaign_order(&pref, &voters(), NodeId(1)), vec![NodeId(2), NodeId(3), NodeId(4), NodeId(5)]);
        assert_eq!(campaign_order(&pref, &voters(), NodeId(3)), vec![NodeId(1), NodeId(2), NodeId(4), NodeId(5)]);
        // Without a preference, ids alone decide.
        assert_eq!(campaign_order(&[], &voters(), NodeId(4)), vec![NodeId(1), NodeId(2), NodeId(3), NodeId(5)]);
        // An unlisted datacenter ranks after the listed ones, whatever its ids.
        let pref = [dc("dc-c")];
        assert_eq!(campaign_order(&pref, &voters(), NodeId(1)), vec![NodeId(5), NodeId(2), NodeId(3), NodeId(4)]);
    }

    #[test]
    fn ranks_are_spaced_one_step_apart_after_half_a_step() {
        let pref = [dc("dc-a"), dc("dc-b")];
        let step = Duration::from_millis(100);
        let delay = |me| campaign_delay(&pref, &voters(), NodeId(1), NodeId(me), step);
        assert_eq!(delay(2), Some(Duration::from_millis(50)));
        assert_eq!(delay(3), Some(Duration::from_millis(150)));
        assert_eq!(delay(5), Some(Duration::from_millis(350)));
        // The dead leader, and anyone who is not a voter, never campaigns.
        assert_eq!(delay(1), None);
        assert_eq!(delay(9), None);
    }

    #[test]
    fn after_a_silent_leader_the_first_survivor_campaigns_at_the_election_timeout() {
        let pref = [dc("dc-a"), dc("dc-b")];
        let (election, step) = (Duration::from_millis(1000), Duration::from_millis(100));
        let delay = |me| silent_leader_delay(&pref, &voters(), NodeId(2), NodeId(me), election, step);
        assert_eq!(delay(1), Some(Duration::from_millis(1000)));
        assert_eq!(delay(3), Some(Duration::from_millis(1100)));
        assert_eq!(delay(5), Some(Duration::from_millis(1300)));
        assert_eq!(delay(2), None, "the silent leader itself");
        assert_eq!(delay(9), None, "not a voter");
    }
}
