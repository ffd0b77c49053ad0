//! One member's probing of the others, as a pure table: probes sent and answered go in (with the member's
//! clock), the probe timeout of each link and the reachability vector to report come out. Timeouts follow
//! each link's measured round-trip time (TCP's smoothed RTT and variance), so a member 150 ms away is not
//! declared silent by a window made for members 1 ms away.

use std::collections::BTreeMap;

use meridian_types::NodeId;

use crate::report::{PeerSeen, Report};

/// Probing tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReachConfig {
    /// How often each member is probed (the timing preset's heartbeat).
    pub interval_ms: u64,
    /// The shortest probe timeout, whatever the link's round-trip time.
    pub min_timeout_ms: u64,
    /// The shortest silence after which a member counts as unreachable (the election timeout: a member
    /// that misses a few probes in a row is not yet unreachable).
    pub min_unreachable_ms: u64,
}

impl ReachConfig {
    /// Tunables for a heartbeat and an election timeout.
    pub fn for_timing(heartbeat_ms: u64, election_ms: u64) -> ReachConfig {
        ReachConfig { interval_ms: heartbeat_ms, min_timeout_ms: heartbeat_ms * 2, min_unreachable_ms: election_ms }
    }
}

/// The round-trip estimate of one link (RFC 6298's smoothed RTT and variance, in microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Estimate {
    srtt_us: u64,
    rttvar_us: u64,
}

impl Estimate {
    fn first(sample_us: u64) -> Estimate {
        Estimate { srtt_us: sample_us, rttvar_us: sample_us / 2 }
    }

    fn update(self, sample_us: u64) -> Estimate {
        let err = self.srtt_us.abs_diff(sample_us);
        Estimate { srtt_us: (7 * self.srtt_us + sample_us) / 8, rttvar_us: (3 * self.rttvar_us + err) / 4 }
    }

    /// RFC 6298's retransmission timeout, srtt + 4 × rttvar, in milliseconds (rounded up).
    fn rto_ms(self) -> u64 {
        (self.srtt_us + 4 * self.rttvar_us).div_ceil(1000)
    }
}

#[derive(Clone, Debug)]
struct Link {
    estimate: Option<Estimate>,
    last_answer_ms: Option<u64>,
    /// When this member began probing it: silence is counted from here until the first answer.
    since_ms: u64,
}

/// This member's view of every other member.
#[derive(Clone, Debug)]
pub struct ReachTable {
    config: ReachConfig,
    links: BTreeMap<NodeId, Link>,
}

impl ReachTable {
    /// An empty table.
    pub fn new(config: ReachConfig) -> ReachTable {
        ReachTable { config, links: BTreeMap::new() }
    }

    /// Probes exactly `members` from now on: new ones start silent at `now_ms`, departed ones are forgotten.
    pub fn set_members(&mut self, members: impl IntoIterator<Item = NodeId>, now_ms: u64) {
        let wanted: BTreeMap<NodeId, ()> = members.into_iter().map(|m| (m, ())).collect();
        self.links.retain(|id, _| wanted.contains_key(id));
        for id in wanted.keys() {
            self.links.entry(*id).or_insert(Link { estimate: None, last_answer_ms: None, since_ms: now_ms });
        }
    }

    /// How long to wait for `member`'s answer: twice the heartbeat at least, and at least the link's RTO and
    /// twice its smoothed round trip.
    pub fn probe_timeout_ms(&self, member: NodeId) -> u64 {
        let rto = self.links.get(&member).and_then(|l| l.estimate).map_or(0, |e| e.rto_ms().max(2 * e.srtt_us / 1000));
        rto.max(self.config.min_timeout_ms)
    }

    /// After how long without an answer `member` counts as unreachable: the election timeout at least, and at
    /// least three probe timeouts, so a far link loses several probes in a row before it does.
    pub fn unreachable_after_ms(&self, member: NodeId) -> u64 {
        (3 * self.probe_timeout_ms(member)).max(self.config.min_unreachable_ms)
    }

    /// A probe sent to `member` at `sent_ms` was answered at `now_ms`.
    pub fn answered(&mut self, member: NodeId, sent_ms: u64, now_ms: u64) {
        let Some(link) = self.links.get_mut(&member) else { return };
        let sample_us = now_ms.saturating_sub(sent_ms).saturating_mul(1000).max(1);
        link.estimate = Some(match link.estimate {
            None => Estimate::first(sample_us),
            Some(e) => e.update(sample_us),
        });
        link.last_answer_ms = Some(link.last_answer_ms.map_or(now_ms, |t| t.max(now_ms)));
    }

    /// The reachability vector `reporter` sends to the leader at `now_ms`.
    pub fn report(&self, reporter: NodeId, now_ms: u64) -> Report {
        let peers = self
            .links
            .iter()
            .map(|(id, link)| {
                let silent_ms = now_ms.saturating_sub(link.last_answer_ms.unwrap_or(link.since_ms));
                PeerSeen {
                    member: *id,
                    reachable: link.last_answer_ms.is_some() && silent_ms < self.unreachable_after_ms(*id),
                    silent_ms,
                    rtt_ms: link.estimate.map(|e| e.srtt_us / 1000),
                }
            })
            .collect();
        Report { reporter, peers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: ReachConfig = ReachConfig { interval_ms: 100, min_timeout_ms: 200, min_unreachable_ms: 1000 };

    fn table(members: &[u64]) -> ReachTable {
        let mut t = ReachTable::new(LAN);
        t.set_members(members.iter().map(|m| NodeId(*m)), 0);
        t
    }

    #[test]
    fn a_near_link_keeps_the_floor_timeouts() {
        let mut t = table(&[2]);
        for i in 0..20 {
            t.answered(NodeId(2), i * 100, i * 100 + 1);
        }
        assert_eq!(t.probe_timeout_ms(NodeId(2)), 200);
        assert_eq!(t.unreachable_after_ms(NodeId(2)), 1000);
    }

    #[test]
    fn a_far_link_gets_timeouts_scaled_to_its_round_trip() {
        let mut t = table(&[4]);
        // 150 ms round trips with ±30 ms jitter.
        for i in 0..40u64 {
            let rtt = if i % 2 == 0 { 120 } else { 180 };
            t.answered(NodeId(4), i * 100, i * 100 + rtt);
        }
        let timeout = t.probe_timeout_ms(NodeId(4));
        assert!(timeout >= 300, "timeout {timeout} ms must cover twice the round trip");
        assert!(t.unreachable_after_ms(NodeId(4)) >= 3 * timeout);
    }

    #[test]
    fn silence_is_counted_from_the_last_answer_or_from_when_probing_began() {
        let mut t = table(&[2, 3]);
        t.answered(NodeId(2), 0, 1);
        let r = t.report(NodeId(1), 1500);
        let seen = |id| r.peers.iter().find(|p| p.member == NodeId(id)).copied().unwrap();
        assert_eq!(seen(2).silent_ms, 1499);
        assert!(!seen(2).reachable, "silent past the election timeout");
        assert_eq!(seen(3).silent_ms, 1500, "never answered: silent since probing began");
        assert!(!seen(3).reachable);
        t.answered(NodeId(2), 1500, 1502);
        assert!(t.report(NodeId(1), 1600).peers[0].reachable);
    }

    #[test]
    fn a_far_member_missing_a_few_probes_stays_reachable() {
        let mut t = table(&[4]);
        for i in 0..10u64 {
            t.answered(NodeId(4), i * 100, i * 100 + 150);
        }
        // The last answer came at 1050; three probes in a row are lost.
        let r = t.report(NodeId(1), 1050 + 400);
        assert!(r.peers[0].reachable);
    }

    #[test]
    fn departed_members_are_forgotten_and_new_ones_start_silent() {
        let mut t = table(&[2]);
        t.answered(NodeId(2), 0, 1);
        t.set_members([NodeId(3)], 500);
        let r = t.report(NodeId(1), 600);
        assert_eq!(r.peers.len(), 1);
        assert_eq!(r.peers[0].member, NodeId(3));
        assert_eq!(r.peers[0].silent_ms, 100);
    }
}
