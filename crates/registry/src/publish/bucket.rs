//! A token bucket in integer arithmetic: `rate_per_sec` tokens a second, at most `burst` saved. Tokens are
//! counted in thousandths, so a rate of R tokens a second adds R thousandths a millisecond, exactly.

use crate::time::Timestamp;

/// A token bucket fed by the caller's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    rate_per_sec: u32,
    burst: u32,
    milli_tokens: u64,
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate_per_sec: u32, burst: u32, now: Timestamp) -> TokenBucket {
        TokenBucket { rate_per_sec, burst, milli_tokens: u64::from(burst) * 1000, last: now }
    }

    fn refill(&mut self, now: Timestamp) {
        // A clock that went back adds nothing and does not move `last` back.
        let elapsed = now.0.saturating_sub(self.last.0);
        self.last = self.last.max(now);
        let added = elapsed.saturating_mul(u64::from(self.rate_per_sec));
        self.milli_tokens = self.milli_tokens.saturating_add(added).min(u64::from(self.burst) * 1000);
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Timestamp) -> u32 {
        self.refill(now);
        u32::try_from(self.milli_tokens / 1000).unwrap_or(u32::MAX)
    }

    /// Takes up to `n` tokens at `now`; returns how many were taken.
    pub fn take(&mut self, n: u32, now: Timestamp) -> u32 {
        let granted = n.min(self.available(now));
        self.milli_tokens -= u64::from(granted) * 1000;
        granted
    }

    /// When at least one whole token will be available (`None` if never: a rate of 0 and an empty bucket).
    pub fn next_token_at(&self) -> Option<Timestamp> {
        let missing = 1000u64.saturating_sub(self.milli_tokens);
        if missing == 0 {
            return Some(self.last);
        }
        if self.rate_per_sec == 0 || self.burst == 0 {
            return None;
        }
        let rate = u64::from(self.rate_per_sec);
        Some(Timestamp(self.last.0.saturating_add(missing.div_ceil(rate))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(10, 5, Timestamp(0));
        assert_eq!(b.take(8, Timestamp(0)), 5, "a full bucket gives its burst");
        assert_eq!(b.take(1, Timestamp(0)), 0);
        assert_eq!(b.next_token_at(), Some(Timestamp(100)), "10 a second: one every 100 ms");
        assert_eq!(b.available(Timestamp(99)), 0);
        assert_eq!(b.available(Timestamp(100)), 1);
        assert_eq!(b.take(3, Timestamp(250)), 2, "2.5 tokens saved: two whole ones");
        assert_eq!(b.next_token_at(), Some(Timestamp(300)), "the half token is kept");
        assert_eq!(b.available(Timestamp(60_000)), 5, "never more than the burst");
    }

    #[test]
    fn a_clock_going_back_adds_nothing() {
        let mut b = TokenBucket::new(1000, 1, Timestamp(1_000));
        assert_eq!(b.take(1, Timestamp(1_000)), 1);
        assert_eq!(b.available(Timestamp(500)), 0);
        assert_eq!(b.available(Timestamp(1_000)), 0, "the step back did not move the clock back");
        assert_eq!(b.available(Timestamp(1_001)), 1);
    }

    #[test]
    fn a_zero_rate_bucket_only_spends_its_burst() {
        let mut b = TokenBucket::new(0, 2, Timestamp(0));
        assert_eq!(b.take(5, Timestamp(0)), 2);
        assert_eq!(b.available(Timestamp(1_000_000)), 0);
        assert_eq!(b.next_token_at(), None);
    }
}
