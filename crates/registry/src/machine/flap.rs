//! Flap damping. The rule: **a change towards better health is published only while fewer than
//! `max_changes` changes of the check were published in the trailing `window`; a change towards worse health
//! is always published at once.** A held improvement is published by the first `tick` or observation after
//! the window allows it, if the check is still in that status; if it worsens again first, the held change is
//! simply dropped (the store never saw it).
//!
//! Why asymmetric: damping must never keep traffic on an instance that fails. Since a worsening can only follow
//! a published improvement, a flapping check publishes at most `max_changes + 1` changes per window.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Timestamp;

/// The damping rule's parameters. The rule: a change towards better health is published only while fewer
/// than `max_changes` changes of the check were published in the trailing `window`; a change towards worse
/// health is always published at once. A held improvement goes out at the first tick or observation the window
/// allows, or is dropped if the check worsens again first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlapDamping {
    /// How many published changes the window may hold before improvements wait (at least 1).
    pub max_changes: u32,
    /// The trailing window.
    pub window: Duration,
}

impl FlapDamping {
    /// Four changes a minute: a check that failed and recovered twice in a minute waits before it is
    /// announced healthy again.
    pub const DEFAULT: FlapDamping = FlapDamping { max_changes: 4, window: Duration::from_secs(60) };
}

impl Default for FlapDamping {
    fn default() -> Self {
        FlapDamping::DEFAULT
    }
}

/// The times of a check's recent published changes, at most `max_changes` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FlapHistory {
    times: VecDeque<Timestamp>,
}

impl FlapHistory {
    fn prune(&mut self, rule: &FlapDamping, now: Timestamp) {
        while self.times.front().is_some_and(|t| t.plus(rule.window) <= now) {
            self.times.pop_front();
        }
    }

    /// Whether an improvement may be published at `now`.
    pub(crate) fn allows(&mut self, rule: &FlapDamping, now: Timestamp) -> bool {
        self.prune(rule, now);
        self.times.len() < rule.max_changes.max(1) as usize
    }

    /// Notes a change published at `now`.
    pub(crate) fn record(&mut self, rule: &FlapDamping, now: Timestamp) {
        self.prune(rule, now);
        self.times.push_back(now);
        while self.times.len() > rule.max_changes.max(1) as usize {
            self.times.pop_front();
        }
    }

    /// When an improvement will next be allowed (now or earlier if it already is).
    pub(crate) fn release_at(&self, rule: &FlapDamping) -> Timestamp {
        let max = rule.max_changes.max(1) as usize;
        match self.times.len().checked_sub(max) {
            Some(i) => self.times[i].plus(rule.window),
            None => Timestamp(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_at_most_max_changes() {
        let rule = FlapDamping { max_changes: 2, window: Duration::from_secs(10) };
        let mut h = FlapHistory::default();
        assert!(h.allows(&rule, Timestamp(0)));
        h.record(&rule, Timestamp(1_000));
        assert!(h.allows(&rule, Timestamp(1_500)));
        h.record(&rule, Timestamp(2_000));
        assert!(!h.allows(&rule, Timestamp(2_500)));
        assert_eq!(h.release_at(&rule), Timestamp(11_000));
        assert!(!h.allows(&rule, Timestamp(10_999)));
        assert!(h.allows(&rule, Timestamp(11_000)), "the change at 1s left the window");
        h.record(&rule, Timestamp(3_000));
        h.record(&rule, Timestamp(4_000));
        assert_eq!(h.release_at(&rule), Timestamp(13_000), "only the latest max_changes are kept");
    }
}
