//! Batching and rate limiting of check state changes on their way to the Raft log, so that a check storm
//! (a whole datacenter's instances flapping at once) cannot flood it.
//!
//! The runner pushes every [`Change`] its state machines return into a [`Batcher`] and calls
//! [`Batcher::flush`] whenever [`Batcher::next_flush_at`] comes (or more often); each non-empty flush is one
//! proposal writing the changes' [`crate::CheckRecord`]s.
//!
//! Rules:
//! - **Coalescing**: one pending change per check; a newer change of the same check replaces the older one
//!   but keeps its `from` and its place in the queue. A check that changed and changed back (`from == to`) is
//!   dropped: the store already holds that status.
//! - **Pacing**: a flush happens at most every `min_interval`, except that a batch holding `max_batch` changes
//!   may go at once. A flush carries at most `max_batch` changes.
//! - **Rate**: every change flushed costs a token of a bucket refilled at `rate_per_sec` up to `burst`; what
//!   the bucket cannot pay for waits (and keeps coalescing).
//! - **Order**: worse news first (critical, then warning, then passing), then the order changes arrived, so
//!   under a limit traffic is taken off failing instances before it is given back to recovered ones.

mod bucket;

use std::collections::BTreeMap;
use std::time::Duration;

pub use bucket::TokenBucket;

use crate::error::{Error, Result};
use crate::machine::Change;
use crate::name::{CheckRef, InstanceRef};
use crate::time::Timestamp;

/// The batcher's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishConfig {
    /// The shortest time between two flushes (unless a batch is full).
    pub min_interval: Duration,
    /// The most changes in one flush (at least 1).
    pub max_batch: usize,
    /// Changes a second the bucket refills.
    pub rate_per_sec: u32,
    /// The most changes the bucket saves up (at least 1).
    pub burst: u32,
}

impl Default for PublishConfig {
    /// A flush every 100 ms at most, 256 changes a flush, 500 changes a second with bursts of 1000: a whole
    /// datacenter's worth of instances turning critical goes out within a few seconds, never faster.
    fn default() -> Self {
        PublishConfig { min_interval: Duration::from_millis(100), max_batch: 256, rate_per_sec: 500, burst: 1000 }
    }
}

/// One change to write: which check, and its new state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The check.
    pub check: CheckRef,
    /// The change (its [`Change::record`] is what to store).
    pub change: Change,
}

#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    change: Change,
}

/// Collects changes and hands them out in paced, rate-limited batches.
#[derive(Clone, Debug)]
pub struct Batcher {
    config: PublishConfig,
    pending: BTreeMap<CheckRef, Pending>,
    next_seq: u64,
    last_flush: Option<Timestamp>,
    bucket: TokenBucket,
}

impl Batcher {
    /// An empty batcher with a full bucket at `now`. Refuses a `max_batch` or `burst` of 0 (nothing would
    /// ever flush).
    pub fn new(config: PublishConfig, now: Timestamp) -> Result<Batcher> {
        if config.max_batch == 0 {
            return Err(Error::BadPublishConfig("max_batch must be at least 1"));
        }
        if config.burst == 0 {
            return Err(Error::BadPublishConfig("burst must be at least 1"));
        }
        let bucket = TokenBucket::new(config.rate_per_sec, config.burst, now);
        Ok(Batcher { config, pending: BTreeMap::new(), next_seq: 0, last_flush: None, bucket })
    }

    /// Adds a change of `check`, coalescing with one already pending.
    pub fn push(&mut self, check: CheckRef, change: Change) {
        if let Some(p) = self.pending.get_mut(&check) {
            let merged = Change { from: p.change.from, ..change };
            if merged.from == merged.to {
                self.pending.remove(&check);
            } else {
                p.change = merged;
            }
            return;
        }
        self.pending.insert(check, Pending { seq: self.next_seq, change });
        self.next_seq += 1;
    }

    /// Drops the pending changes of `instance` (it was deregistered); returns how many.
    pub fn discard_instance(&mut self, instance: &InstanceRef) -> usize {
        let before = self.pending.len();
        self.pending.retain(|check, _| &check.instance != instance);
        before - self.pending.len()
    }

    /// Whether a change of `check` waits.
    pub fn contains(&self, check: &CheckRef) -> bool {
        self.pending.contains_key(check)
    }

    /// How many changes wait.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The changes to propose now, in one batch; empty when nothing is due.
    pub fn flush(&mut self, now: Timestamp) -> Vec<Update> {
        if !self.due(now) {
            return Vec::new();
        }
        let room = u32::try_from(self.config.max_batch.min(self.pending.len())).unwrap_or(u32::MAX);
        let granted = self.bucket.take(room, now) as usize;
        if granted == 0 {
            return Vec::new();
        }
        let mut order: Vec<(std::cmp::Reverse<crate::status::Status>, u64, CheckRef)> =
            self.pending.iter().map(|(c, p)| (std::cmp::Reverse(p.change.to), p.seq, c.clone())).collect();
        order.sort();
        self.last_flush = Some(now);
        order
            .into_iter()
            .take(granted)
            .filter_map(|(_, _, check)| self.pending.remove(&check).map(|p| Update { check, change: p.change }))
            .collect()
    }

    /// When [`flush`](Self::flush) will next hand something out (at the earliest); `None` with nothing pending.
    pub fn next_flush_at(&self) -> Option<Timestamp> {
        if self.pending.is_empty() {
            return None;
        }
        let paced = match self.last_flush {
            Some(last) if self.pending.len() < self.config.max_batch => last.plus(self.config.min_interval),
            _ => Timestamp(0),
        };
        self.bucket.next_token_at().map(|token| paced.max(token))
    }

    fn due(&self, now: Timestamp) -> bool {
        !self.pending.is_empty()
            && (self.pending.len() >= self.config.max_batch
                || self.last_flush.is_none_or(|last| now >= last.plus(self.config.min_interval)))
    }
}

#[cfg(test)]
mod tests;
