//! Delivering one token to a group's hooks, as a state machine the leader drives: it starts from the audit log
//! (so a new leader resumes what its predecessor left unacknowledged), calls every pending hook once per round,
//! waits out the backoff after a round that left some pending, and writes the ack marker once all have
//! acknowledged. It refuses to start for a token smaller than one already acknowledged, so a hook never sees the
//! group go backwards.

use std::collections::BTreeSet;

use meridian_types::Revision;

use crate::audit::TokenLog;
use crate::hook::RetrySchedule;

/// Where the delivery of one token stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Hooks (by position) still to acknowledge `token`, after `failed_rounds` rounds that left some pending.
    Calling {
        /// The token.
        token: Revision,
        /// The hooks that have not acknowledged it.
        pending: BTreeSet<usize>,
        /// Rounds so far that left a hook pending.
        failed_rounds: u32,
    },
    /// Every hook acknowledged `token`; the ack marker is still to be written.
    Acknowledged {
        /// The token.
        token: Revision,
    },
    /// The ack marker of `token` is written: nothing more to do.
    Closed {
        /// The token.
        token: Revision,
    },
    /// A larger token was acknowledged already: calling hooks with `token` would take them backwards.
    Superseded {
        /// The token not to deliver.
        token: Revision,
        /// The larger token already acknowledged.
        acknowledged: Revision,
    },
}

impl Delivery {
    /// Where delivering `token` to a group of `hooks` hooks stands, given the token's audit `log` and the largest
    /// token the group's hooks have all acknowledged.
    pub fn start(token: Revision, hooks: usize, log: &TokenLog, highest_acked: Option<Revision>) -> Delivery {
        if let Some(acknowledged) = highest_acked.filter(|h| *h > token) {
            return Delivery::Superseded { token, acknowledged };
        }
        if log.acknowledged {
            return Delivery::Closed { token };
        }
        let pending: BTreeSet<usize> = (0..hooks).filter(|h| !log.acked_hooks.contains(h)).collect();
        if pending.is_empty() {
            return Delivery::Acknowledged { token };
        }
        Delivery::Calling { token, pending, failed_rounds: 0 }
    }

    /// After a round in which the hooks in `acked` acknowledged.
    pub fn after_round(self, acked: impl IntoIterator<Item = usize>) -> Delivery {
        match self {
            Delivery::Calling { token, mut pending, failed_rounds } => {
                for hook in acked {
                    pending.remove(&hook);
                }
                if pending.is_empty() {
                    Delivery::Acknowledged { token }
                } else {
                    Delivery::Calling { token, pending, failed_rounds: failed_rounds.saturating_add(1) }
                }
            }
            other => other,
        }
    }

    /// After the ack marker was written.
    pub fn marked(self) -> Delivery {
        match self {
            Delivery::Acknowledged { token } => Delivery::Closed { token },
            other => other,
        }
    }

    /// The hooks to call in the next round (none unless calling).
    pub fn pending(&self) -> Vec<usize> {
        match self {
            Delivery::Calling { pending, .. } => pending.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// How long to wait before the next round: nothing before the first, then the schedule's backoff.
    pub fn wait_ms(&self, schedule: &RetrySchedule) -> u64 {
        match self {
            Delivery::Calling { failed_rounds, .. } if *failed_rounds > 0 => schedule.delay_ms(*failed_rounds),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Revision = Revision(50);
    const SCHEDULE: RetrySchedule = RetrySchedule { first_ms: 100, max_ms: 400 };

    fn log(acked: &[usize], acknowledged: bool) -> TokenLog {
        TokenLog { acknowledged, acked_hooks: acked.iter().copied().collect(), next_attempt: 0 }
    }

    #[test]
    fn start_table() {
        let calling = |pending: &[usize]| Delivery::Calling {
            token: T,
            pending: pending.iter().copied().collect(),
            failed_rounds: 0,
        };
        let cases = [
            ("a fresh token calls every hook", 2, log(&[], false), None, calling(&[0, 1])),
            ("a resumed token calls only the hooks not yet acknowledged", 2, log(&[1], false), None, calling(&[0])),
            (
                "hooks all acknowledged but no marker: write it",
                2,
                log(&[0, 1], false),
                None,
                Delivery::Acknowledged { token: T },
            ),
            ("a marked token is closed", 2, log(&[], true), Some(T), Delivery::Closed { token: T }),
            (
                "an older acknowledged token does not stop a newer one",
                1,
                log(&[], false),
                Some(Revision(10)),
                calling(&[0]),
            ),
            (
                "a token smaller than one acknowledged is never delivered",
                1,
                log(&[], false),
                Some(Revision(60)),
                Delivery::Superseded { token: T, acknowledged: Revision(60) },
            ),
        ];
        for (name, hooks, log, highest, want) in cases {
            assert_eq!(Delivery::start(T, hooks, &log, highest), want, "{name}");
        }
    }

    #[test]
    fn rounds_back_off_until_every_hook_acknowledged_then_close() {
        let d = Delivery::start(T, 3, &TokenLog::default(), None);
        assert_eq!((d.pending(), d.wait_ms(&SCHEDULE)), (vec![0, 1, 2], 0), "the first round goes at once");
        let d = d.after_round([1]);
        assert_eq!((d.pending(), d.wait_ms(&SCHEDULE)), (vec![0, 2], 100));
        let d = d.after_round([]);
        assert_eq!((d.pending(), d.wait_ms(&SCHEDULE)), (vec![0, 2], 200));
        let d = d.after_round([]).after_round([2]);
        assert_eq!((d.pending(), d.wait_ms(&SCHEDULE)), (vec![0], 400), "the wait is capped");
        let d = d.after_round([0]);
        assert_eq!(d, Delivery::Acknowledged { token: T });
        assert!(d.pending().is_empty());
        assert_eq!(d.marked(), Delivery::Closed { token: T });
    }

    #[test]
    fn finished_deliveries_ignore_late_results() {
        let superseded = Delivery::Superseded { token: T, acknowledged: Revision(60) };
        assert_eq!(superseded.clone().after_round([0]).marked(), superseded);
        assert!(superseded.pending().is_empty());
    }
}
