//! The member's clock for its own timers: lease expiry and the leader's view of peer health.
//!
//! It reads tokio's monotonic clock, so the simulation's virtual time drives it, and can run at a
//! skewed rate (parts per million) so the simulation can give members clocks that drift apart, as
//! real machines' clocks do. Instants shown to people (a verdict's `since`) are this clock's readings
//! plus the Unix time at which it started: read from the system for a real server, fixed by the
//! simulation so its runs replay.

use tokio::time::Instant;

/// A monotonic millisecond clock that starts at zero and may run fast or slow.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    /// Rate error in parts per million: +10_000 runs 1% fast.
    drift_ppm: i32,
    /// Unix time in milliseconds when the clock read zero.
    epoch_unix_ms: u64,
}

impl Clock {
    /// A clock starting now at the true rate, its epoch the system's time now.
    pub fn new() -> Self {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::with_drift(0).starting_at_unix_ms(unix_ms)
    }

    /// A clock starting now that gains `drift_ppm` millionths of a second per second (loses, when
    /// negative). Its wall-clock time starts at the Unix epoch (see [`Clock::starting_at_unix_ms`]).
    pub fn with_drift(drift_ppm: i32) -> Self {
        Clock { origin: Instant::now(), drift_ppm, epoch_unix_ms: 0 }
    }

    /// The same clock, reading `unix_ms` (milliseconds since the Unix epoch) when it started.
    pub fn starting_at_unix_ms(mut self, unix_ms: u64) -> Self {
        self.epoch_unix_ms = unix_ms;
        self
    }

    /// The Unix time, in milliseconds, of this clock's reading `ms`.
    pub fn unix_ms_at(&self, ms: u64) -> u64 {
        self.epoch_unix_ms.saturating_add(ms)
    }

    /// Wall-clock time as this clock measures it, in milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.unix_ms_at(self.now_ms())
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
