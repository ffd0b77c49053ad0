//! The member's clock for its own timers: lease expiry and the leader's view of peer health.
//!
//! It reads tokio's monotonic clock, so the simulation's virtual time drives it, and can run at a
//! skewed rate (parts per million) so the simulation can give members clocks that drift apart, as
//! real machines' clocks do. The times it stamps on records clients read (a failover group's `since`) are
//! its monotonic time added to the wall-clock time it started at: read from the system once, in a real
//! server; the Unix epoch in the simulation, whose runs must not depend on the real time.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A monotonic millisecond clock that starts at zero and may run fast or slow.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    /// Rate error in parts per million: +10_000 runs 1% fast.
    drift_ppm: i32,
    /// The wall-clock time at `origin`, in milliseconds since the Unix epoch.
    unix_origin_ms: u64,
}

impl Clock {
    /// A clock starting now at the true rate, whose wall-clock time starts at the system's.
    pub fn new() -> Self {
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Clock { unix_origin_ms: u64::try_from(unix_now).unwrap_or(u64::MAX), ..Self::with_drift(0) }
    }

    /// A clock starting now that gains `drift_ppm` millionths of a second per second (loses, when
    /// negative). Its wall-clock time starts at the Unix epoch.
    pub fn with_drift(drift_ppm: i32) -> Self {
        Clock { origin: Instant::now(), drift_ppm, unix_origin_ms: 0 }
    }

    /// Wall-clock time as this clock measures it, in milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.unix_origin_ms.saturating_add(self.now_ms())
    }

    /// Milliseconds since the clock started, as this clock measures them.
    pub fn now_ms(&self) -> u64 {
        let true_us = self.origin.elapsed().as_micros();
        let scaled = true_us.saturating_mul((1_000_000 + i128::from(self.drift_ppm)).max(0) as u128) / 1_000_000;
        u64::try_from(scaled / 1000).unwrap_or(u64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_drifting_clock_gains_in_proportion_to_elapsed_time() {
        let (exact, fast, slow) = (Clock::new(), Clock::with_drift(10_000), Clock::with_drift(-10_000));
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(exact.now_ms(), 100_000);
        assert_eq!(fast.now_ms(), 101_000);
        assert_eq!(slow.now_ms(), 99_000);
        assert_eq!(fast.unix_ms(), 101_000, "a simulated clock's wall time starts at the epoch");
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_clock_tells_wall_time_from_its_start() {
        let clock = Clock::new();
        let before = clock.unix_ms();
        assert!(before > 1_600_000_000_000, "{before} is a recent Unix time");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.unix_ms(), before + 2_000);
    }
}
