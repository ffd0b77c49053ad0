//! Isolated-leader watchdog (design §5). openraft keeps a partitioned leader in the `Leader` state
//! until it hears of a higher term, so without this check an isolated leader would keep accepting
//! proposals that can never commit, and clients would hang on it instead of moving to the majority.
//!
//! The rule is etcd's CheckQuorum: a leader that has not been acknowledged by a quorum for an
//! election timeout stops serving writes and linearizable reads. We use the *maximum* election
//! timeout: it is openraft's leader lease, i.e. the earliest moment the other voters may elect a new
//! leader, so stopping earlier would only cause needless errors on a slow but healthy leader.
//!
//! The decision is a pure function of the leader's last quorum acknowledgement and the current time;
//! `RaftNode` feeds it from openraft's metrics (`last_quorum_acked`).

use std::ops::Sub;
use std::time::Duration;

/// What the watchdog says about this member as a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a leader, a leader alone in its quorum, or a leader heard from recently: serve.
    Serving,
    /// A leader with no quorum acknowledgement for longer than the timeout.
    Isolated {
        /// How long the quorum has been silent.
        silent_for: Duration,
    },
}

/// Judge a leader from its last quorum acknowledgement.
///
/// - `is_leader`: whether the member currently believes it leads;
/// - `self_quorum`: whether it is the only voter (then it never needs anyone's acknowledgement);
/// - `last_quorum_acked`: when a quorum last acknowledged it; `None` for a new leader that has not
///   been acknowledged yet, which openraft's own leader lease already keeps from accepting writes;
/// - `timeout`: the election timeout.
///
/// Generic over the instant type so openraft's runtime instant and plain instants both fit.
pub fn verdict<I: Copy + Ord + Sub<Output = Duration>>(
    now: I,
    is_leader: bool,
    self_quorum: bool,
    last_quorum_acked: Option<I>,
    timeout: Duration,
) -> Verdict {
    if !is_leader || self_quorum {
        return Verdict::Serving;
    }
    match last_quorum_acked {
        Some(acked) => {
            // An acknowledgement stamped after `now` (a race with the metrics update) is fresh.
            let silent_for = if acked >= now { Duration::ZERO } else { now - acked };
            if silent_for > timeout { Verdict::Isolated { silent_for } } else { Verdict::Serving }
        }
        None => Verdict::Serving,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn verdicts() {
        let t0 = Instant::now();
        let timeout = Duration::from_millis(400);
        let ms = Duration::from_millis;
        let cases = [
            ("follower is never judged", t0 + ms(10_000), false, false, Some(t0), Verdict::Serving),
            ("single voter needs no quorum", t0 + ms(10_000), true, true, Some(t0), Verdict::Serving),
            ("fresh ack", t0 + ms(50), true, false, Some(t0), Verdict::Serving),
            ("exactly the timeout is still serving", t0 + ms(400), true, false, Some(t0), Verdict::Serving),
            ("silent past the timeout", t0 + ms(401), true, false, Some(t0), Verdict::Isolated { silent_for: ms(401) }),
            ("not yet acknowledged: openraft's lease decides", t0 + ms(10_000), true, false, None, Verdict::Serving),
            ("ack stamped after now (clock race)", t0, true, false, Some(t0 + ms(5)), Verdict::Serving),
        ];
        for (name, now, leader, alone, acked, want) in cases {
            assert_eq!(verdict(now, leader, alone, acked, timeout), want, "{name}");
        }
    }
}
