//! This member's reachability: its own probe table (what it measures of every other member) and, on the
//! leader, the latest report received from each member. The prober fills the table, the peer service stores
//! incoming reports, the verdict driver reads both; status shows them. The wire form of a report lives here
//! too, so the two sides of the peer call share one translation.

use std::collections::BTreeMap;

use meridian_failover::{PeerSeen, ReachConfig, ReachTable, ReceivedReport, Report};
use meridian_proto::meridianpb::{PeerReach, ReachabilityReport};
use meridian_types::NodeId;
use parking_lot::Mutex;

use crate::clock::Clock;

/// Shared reachability state of one member.
pub struct ReachState {
    me: NodeId,
    clock: Clock,
    table: Mutex<ReachTable>,
    reports: Mutex<BTreeMap<NodeId, ReceivedReport>>,
}

impl ReachState {
    /// Empty state for member `me`, on `clock`.
    pub fn new(me: NodeId, clock: Clock, config: ReachConfig) -> ReachState {
        ReachState { me, clock, table: Mutex::new(ReachTable::new(config)), reports: Mutex::new(BTreeMap::new()) }
    }

    /// The clock reports are stamped with.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Runs `f` on the probe table.
    pub fn with_table<T>(&self, f: impl FnOnce(&mut ReachTable) -> T) -> T {
        f(&mut self.table.lock())
    }

    /// This member's own reachability vector now.
    pub fn own_report(&self) -> Report {
        self.table.lock().report(self.me, self.clock.now_ms())
    }

    /// The members this member has heard nothing from for at least their unreachable window (whether they
    /// answered before or never did).
    pub fn silent_members(&self) -> Vec<NodeId> {
        let table = self.table.lock();
        let report = table.report(self.me, self.clock.now_ms());
        report.peers.iter().filter(|p| p.silent_ms >= table.unreachable_after_ms(p.member)).map(|p| p.member).collect()
    }

    /// Milliseconds since `member` last answered this member's probes (since probing began if it never did);
    /// `None` if it is not probed.
    pub fn silence_ms(&self, member: NodeId) -> Option<u64> {
        self.own_report().peers.iter().find(|p| p.member == member).map(|p| p.silent_ms)
    }

    /// Keeps `report` as its reporter's latest, stamped with the arrival time.
    pub fn accept(&self, report: Report) {
        let received_ms = self.clock.now_ms();
        self.reports.lock().insert(report.reporter, ReceivedReport { report, received_ms });
    }

    /// Every report held, with this member's own vector as fresh as now.
    pub fn reports(&self) -> BTreeMap<NodeId, ReceivedReport> {
        let mut all = self.reports.lock().clone();
        all.insert(self.me, ReceivedReport { report: self.own_report(), received_ms: self.clock.now_ms() });
        all
    }
}

/// The wire form of a report.
pub fn to_wire(report: &Report) -> ReachabilityReport {
    ReachabilityReport {
        reporter: report.reporter.0,
        peers: report
            .peers
            .iter()
            .map(|p| PeerReach {
                member: p.member.0,
                reachable: p.reachable,
                silent_ms: p.silent_ms,
                rtt_ms: p.rtt_ms.unwrap_or(0),
            })
            .collect(),
    }
}

/// A report from its wire form.
pub fn from_wire(wire: &ReachabilityReport) -> Report {
    Report {
        reporter: NodeId(wire.reporter),
        peers: wire
            .peers
            .iter()
            .map(|p| PeerSeen {
                member: NodeId(p.member),
                reachable: p.reachable,
                silent_ms: p.silent_ms,
                rtt_ms: (p.rtt_ms > 0).then_some(p.rtt_ms),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_its_wire_form() {
        let report = Report {
            reporter: NodeId(7),
            peers: vec![
                PeerSeen { member: NodeId(1), reachable: true, silent_ms: 40, rtt_ms: Some(150) },
                PeerSeen { member: NodeId(2), reachable: false, silent_ms: 9000, rtt_ms: None },
            ],
        };
        assert_eq!(from_wire(&to_wire(&report)), report);
    }

    #[tokio::test(start_paused = true)]
    async fn held_reports_include_the_members_own_vector() {
        let state = ReachState::new(NodeId(1), Clock::new(), ReachConfig::for_timing(100, 1000));
        state.with_table(|t| t.set_members([NodeId(2)], 0));
        state.accept(Report { reporter: NodeId(2), peers: Vec::new() });
        let held = state.reports();
        assert_eq!(held.keys().copied().collect::<Vec<_>>(), [NodeId(1), NodeId(2)]);
        assert_eq!(held[&NodeId(1)].report.peers.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn members_silent_for_their_window_are_named_whether_they_ever_answered_or_not() {
        let state = ReachState::new(NodeId(1), Clock::new(), ReachConfig::for_timing(100, 1000));
        state.with_table(|t| t.set_members([NodeId(2), NodeId(3)], 0));
        assert!(state.silent_members().is_empty(), "a link just begun is not silent yet");
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        state.with_table(|t| t.answered(NodeId(2), 499, 500));
        tokio::time::advance(std::time::Duration::from_millis(600)).await;
        assert_eq!(state.silent_members(), [NodeId(3)], "3 never answered in 1.1 s; 2 answered 0.6 s ago");
        tokio::time::advance(std::time::Duration::from_millis(400)).await;
        assert_eq!(state.silent_members(), [NodeId(2), NodeId(3)]);
        state.with_table(|t| t.answered(NodeId(2), 1_499, 1_500));
        assert_eq!(state.silent_members(), [NodeId(3)], "an answer ends the silence");
        assert_eq!(state.silence_ms(NodeId(2)), Some(0));
        assert_eq!(state.silence_ms(NodeId(3)), Some(1_500));
        assert_eq!(state.silence_ms(NodeId(9)), None, "not probed");
    }
}
