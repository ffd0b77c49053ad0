//! The per-source rate limit: a token bucket per source address, refilled at `rate` tokens a second up to a
//! burst of one second's worth. Pure: the time is an argument (milliseconds on any monotonic clock). A query
//! over the limit is dropped without an answer (answering would still reflect traffic to a spoofed source).
//!
//! The table is bounded: when it reaches [`MAX_SOURCES`], buckets that are full again (their source went quiet)
//! are forgotten; if none is, the table starts over (a flood from many addresses then briefly gets fresh
//! buckets, which errs toward answering).

use std::collections::HashMap;
use std::net::IpAddr;

/// The most sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// Token buckets by source address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// `rate` queries per second per source; 0 allows everything.
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter { rate: f64::from(rate), buckets: HashMap::new() }
    }

    /// Whether a query from `src` at `now_ms` is allowed (and takes its token).
    pub fn allow(&mut self, src: IpAddr, now_ms: u64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&src) {
            self.forget_idle(now_ms);
        }
        let (rate, burst) = (self.rate, self.rate.max(1.0));
        let bucket = self.buckets.entry(src).or_insert(Bucket { tokens: burst, at_ms: now_ms });
        let elapsed = now_ms.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn forget_idle(&mut self, now_ms: u64) {
        let (rate, burst) = (self.rate, self.rate.max(1.0));
        self.buckets.retain(|_, b| b.tokens + now_ms.saturating_sub(b.at_ms) as f64 / 1000.0 * rate < burst);
        if self.buckets.len() >= MAX_SOURCES {
            self.buckets.clear();
        }
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut l = RateLimiter::new(10);
        let a = ip("10.0.0.1");
        assert_eq!((0..15).filter(|_| l.allow(a, 1_000)).count(), 10, "a burst of one second's worth");
        assert!(!l.allow(a, 1_050), "half a token after 50 ms");
        assert!(l.allow(a, 1_100), "one token after 100 ms");
        assert!(!l.allow(a, 1_100));
        assert_eq!((0..20).filter(|_| l.allow(a, 60_000)).count(), 10, "a long pause refills only the burst");
    }

    #[test]
    fn sources_are_limited_separately_and_zero_is_unlimited() {
        let mut l = RateLimiter::new(2);
        assert!(l.allow(ip("10.0.0.1"), 0) && l.allow(ip("10.0.0.1"), 0));
        assert!(!l.allow(ip("10.0.0.1"), 0));
        assert!(l.allow(ip("10.0.0.2"), 0), "another source has its own bucket");
        let mut open = RateLimiter::new(0);
        assert!((0..10_000).all(|_| open.allow(ip("10.0.0.1"), 0)));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_quiet_sources_first() {
        let mut l = RateLimiter::new(1);
        for i in 0..MAX_SOURCES as u32 {
            l.allow(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert_eq!(l.sources(), MAX_SOURCES);
        let busy = ip("10.9.9.9");
        assert!(l.allow(busy, 5_000), "a new source after the others went quiet");
        assert_eq!(l.sources(), 1, "the quiet ones (full again) were forgotten");
        assert!(!l.allow(busy, 5_000), "and the new source still has its own limit");
    }

    #[test]
    fn time_going_backwards_takes_nothing_back() {
        let mut l = RateLimiter::new(1);
        assert!(l.allow(ip("10.0.0.1"), 10_000));
        assert!(!l.allow(ip("10.0.0.1"), 5_000));
        assert!(l.allow(ip("10.0.0.1"), 11_000));
    }
}
