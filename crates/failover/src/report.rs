//! A member's reachability vector as it travels to the leader: for every other member, how long ago it last
//! answered a probe and the round-trip time measured on that link.

use meridian_types::NodeId;

/// What one member saw of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSeen {
    /// The probed member.
    pub member: NodeId,
    /// Whether it answered within the link's unreachable window (scaled to the link's round-trip time).
    pub reachable: bool,
    /// Milliseconds since its last answer when the report was made; since probing began if it never answered.
    pub silent_ms: u64,
    /// The smoothed round-trip time of the link, once measured.
    pub rtt_ms: Option<u64>,
}

/// One member's reachability vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The reporting member.
    pub reporter: NodeId,
    /// Every member it probes.
    pub peers: Vec<PeerSeen>,
}

/// A report as the leader holds it: with the leader's clock reading when it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedReport {
    /// The report.
    pub report: Report,
    /// When it arrived, on the leader's clock (ms).
    pub received_ms: u64,
}

impl ReceivedReport {
    /// How old the report is at `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.received_ms)
    }

    /// What the reporter saw of `member`, with its silence aged to `now_ms`; `None` if it does not probe it.
    pub fn seen(&self, member: NodeId, now_ms: u64) -> Option<PeerSeen> {
        let age = self.age_ms(now_ms);
        self.report
            .peers
            .iter()
            .find(|p| p.member == member)
            .map(|p| PeerSeen { silent_ms: p.silent_ms.saturating_add(age), ..*p })
    }
}
