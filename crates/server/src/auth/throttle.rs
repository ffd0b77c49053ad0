//! Throttling of failed logins, per user and per source address (etcd has none). After a few failures in a
//! row, a key is locked out for a time that doubles with each further failure, up to a minute; a success
//! clears the user's count. A pure state machine: time comes in as milliseconds.

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures in a row allowed before a lockout.
const FREE_FAILURES: u32 = 5;
/// The first lockout; each further failure doubles it.
const FIRST_LOCKOUT_MS: u64 = 1_000;
/// The longest lockout.
const MAX_LOCKOUT_MS: u64 = 60_000;
/// Keys remembered at most; the oldest are forgotten first (bounded memory under a spray of names).
const MAX_KEYS: usize = 65_536;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    locked_until_ms: u64,
    last_ms: u64,
}

/// Failed-login bookkeeping.
#[derive(Debug, Default)]
pub struct Throttle {
    keys: HashMap<Key, Failures>,
}

impl Throttle {
    /// `Err(retry_after_ms)` while `user` or `addr` is locked out at `now_ms`.
    pub fn check(&self, now_ms: u64, user: &str, addr: Option<IpAddr>) -> Result<(), u64> {
        let wait = |k: &Key| self.keys.get(k).map_or(0, |f| f.locked_until_ms.saturating_sub(now_ms));
        let longest = wait(&Key::User(user.to_owned())).max(addr.map_or(0, |a| wait(&Key::Addr(a))));
        if longest == 0 { Ok(()) } else { Err(longest) }
    }

    /// Records a failed login.
    pub fn failed(&mut self, now_ms: u64, user: &str, addr: Option<IpAddr>) {
        if self.keys.len() >= MAX_KEYS {
            self.forget_oldest();
        }
        let keys = std::iter::once(Key::User(user.to_owned())).chain(addr.map(Key::Addr));
        for key in keys {
            let f = self.keys.entry(key).or_insert(Failures { count: 0, locked_until_ms: 0, last_ms: now_ms });
            f.count += 1;
            f.last_ms = now_ms;
            if f.count > FREE_FAILURES {
                let doublings = (f.count - FREE_FAILURES - 1).min(16);
                f.locked_until_ms = now_ms + (FIRST_LOCKOUT_MS << doublings).min(MAX_LOCKOUT_MS);
            }
        }
    }

    /// Records a successful login: the user starts afresh (the address keeps its count, so one account cannot
    /// be used to reset a spray from the same address).
    pub fn succeeded(&mut self, user: &str) {
        self.keys.remove(&Key::User(user.to_owned()));
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self.keys.iter().min_by_key(|(_, f)| f.last_ms).map(|(k, _)| k.clone()) {
            self.keys.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));

    #[test]
    fn lockouts_start_after_free_failures_and_double() {
        let mut t = Throttle::default();
        for _ in 0..FREE_FAILURES {
            t.failed(0, "bob", None);
            assert_eq!(t.check(0, "bob", None), Ok(()));
        }
        t.failed(0, "bob", None);
        assert_eq!(t.check(0, "bob", None), Err(1_000));
        assert_eq!(t.check(1_000, "bob", None), Ok(()));
        t.failed(1_000, "bob", None);
        assert_eq!(t.check(1_000, "bob", None), Err(2_000));
        for i in 0..20 {
            t.failed(2_000 + i, "bob", None);
        }
        assert_eq!(t.check(2_019, "bob", None), Err(MAX_LOCKOUT_MS), "capped");
        assert_eq!(t.check(2_019, "alice", None), Ok(()), "per user");
        t.succeeded("bob");
        assert_eq!(t.check(2_019, "bob", None), Ok(()));
    }

    #[test]
    fn an_address_spraying_many_users_is_locked_out() {
        let mut t = Throttle::default();
        for i in 0..=FREE_FAILURES {
            t.failed(0, &format!("user{i}"), ADDR);
        }
        assert_eq!(t.check(0, "someone-new", ADDR), Err(1_000));
        assert_eq!(t.check(0, "someone-new", None), Ok(()));
        t.succeeded("user0");
        assert_eq!(t.check(0, "someone-new", ADDR), Err(1_000), "a success elsewhere does not clear the address");
    }
}
