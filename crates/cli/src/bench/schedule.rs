//! When operations run and when the run stops: the [`Budget`] (a number of operations or a duration) and the
//! open-loop rate schedule.
//!
//! Operations are numbered 0, 1, 2, ... in the order clients take them. With a target rate R, operation i is
//! *due* at `i / R` seconds after the start, whatever happened to earlier operations (open loop): a client
//! that takes operation i waits until it is due, and its latency is measured from the due time, so time spent
//! queued behind a slow server counts (no coordinated omission). Without a rate, operations run as fast as
//! the clients go and latency starts when the request is sent.

use std::time::Duration;

/// Upper bound on operations in a `--duration` run, a second guard besides the clock.
pub const MAX_OPS: u64 = 1 << 40;

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// After this many operations.
    Total(u64),
    /// When this much time has passed since the start (operations in flight finish).
    Duration(Duration),
}

/// Whether a client may run an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Run it; with a rate, not before `due` after the start.
    Run {
        /// Offset from the start at which the operation is due, when paced.
        due: Option<Duration>,
    },
    /// The budget is spent: the client stops.
    Stop,
}

/// The budget plus the pacing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// When to stop.
    pub budget: Budget,
    /// Target ops/s over all clients; 0 for unlimited.
    pub rate: u64,
}

impl Schedule {
    /// Decides about operation `op`, taken `elapsed` after the start.
    pub fn admit(&self, op: u64, elapsed: Duration) -> Admit {
        let due = due_offset(op, self.rate);
        let over = match self.budget {
            Budget::Total(n) => op >= n,
            // Paced: the operations due within the duration, exactly rate × duration of them.
            Budget::Duration(d) => op >= MAX_OPS || due.map_or(elapsed >= d, |due| due >= d),
        };
        if over { Admit::Stop } else { Admit::Run { due } }
    }

    /// How many operations the run will do, when that is known in advance.
    pub fn expected_ops(&self) -> Option<u64> {
        match self.budget {
            Budget::Total(n) => Some(n),
            Budget::Duration(d) if self.rate > 0 => {
                Some(u64::try_from(d.as_nanos() * u128::from(self.rate) / 1_000_000_000).unwrap_or(MAX_OPS))
            }
            Budget::Duration(_) => None,
        }
    }
}

/// When operation `op` is due at `rate` ops/s (`None` when unpaced).
pub fn due_offset(op: u64, rate: u64) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let nanos = u128::from(op) * 1_000_000_000 / u128::from(rate);
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_budget_admits_exactly_that_many_operations() {
        let s = Schedule { budget: Budget::Total(3), rate: 0 };
        let admitted = (0..10).filter(|&op| s.admit(op, Duration::ZERO) != Admit::Stop).count();
        assert_eq!(admitted, 3);
        assert_eq!(s.admit(2, Duration::from_secs(999)), Admit::Run { due: None });
        assert_eq!(s.admit(3, Duration::ZERO), Admit::Stop);
        assert_eq!(s.expected_ops(), Some(3));
    }

    #[test]
    fn paced_operations_are_due_at_i_over_rate() {
        assert_eq!(due_offset(0, 1000), Some(Duration::ZERO));
        assert_eq!(due_offset(1500, 1000), Some(Duration::from_millis(1500)));
        assert_eq!(due_offset(1, 3), Some(Duration::from_nanos(333_333_333)));
        assert_eq!(due_offset(7, 0), None);
        let s = Schedule { budget: Budget::Total(10), rate: 4 };
        assert_eq!(s.admit(6, Duration::ZERO), Admit::Run { due: Some(Duration::from_millis(1500)) });
        // Due times never go backwards.
        let dues: Vec<Duration> = (0..1000).filter_map(|op| due_offset(op, 7)).collect();
        assert!(dues.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_paced_duration_admits_rate_times_duration_operations() {
        let s = Schedule { budget: Budget::Duration(Duration::from_secs(2)), rate: 50 };
        let admitted = (0..1000).filter(|&op| s.admit(op, Duration::ZERO) != Admit::Stop).count();
        assert_eq!(admitted, 100);
        assert_eq!(s.expected_ops(), Some(100));
    }

    #[test]
    fn an_unpaced_duration_stops_on_the_clock() {
        let s = Schedule { budget: Budget::Duration(Duration::from_secs(2)), rate: 0 };
        assert_eq!(s.admit(1_000_000, Duration::from_millis(1999)), Admit::Run { due: None });
        assert_eq!(s.admit(0, Duration::from_secs(2)), Admit::Stop);
        assert_eq!(s.admit(MAX_OPS, Duration::ZERO), Admit::Stop);
        assert_eq!(s.expected_ops(), None);
    }
}
