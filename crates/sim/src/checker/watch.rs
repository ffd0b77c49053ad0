//! Watch stream invariants, in one pass per watch log.
//!
//! Events arrive in revision order without duplicates; one revision never spans two responses; every event is
//! inside the watched range, at or after the start revision, and matches a write of the history; a resumed
//! watch continues right after the last delivered revision; and there are no gaps: every known write to a
//! watched key up to the revision the stream has *covered* was delivered.
//!
//! A response covers its header revision when it carries events, or when it is an empty response (a
//! progress notification) other than the first of a stream: the server stamps a response with the revision up
//! to which it has sent everything. The first response after creating or re-creating a watch is taken to be
//! the "created" acknowledgement, whose header is the store revision even when a historical catch-up is still
//! to come, so it covers nothing.

use std::collections::HashSet;

use super::writes::Writes;
use crate::display::show;
use crate::history::{EventKind, History, WatchEventRecord, WatchLog, WatchResponseRecord};
use crate::key_range::KeyRange;

/// A broken watch invariant. `watch` is the index of the log in [`History::watches`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchViolation {
    /// A write to a watched key within the covered revisions was never delivered.
    #[error("watch {watch}: missed op #{op} on {key} at revision {revision} (stream covered up to {covered})")]
    Gap {
        /// The watch.
        watch: usize,
        /// The write missed.
        op: u64,
        /// Its key.
        key: String,
        /// Its revision.
        revision: i64,
        /// The revision the stream had covered.
        covered: i64,
    },
    /// The same (revision, key) event arrived twice.
    #[error("watch {watch}: event on {key} at revision {revision} delivered twice")]
    Duplicate {
        /// The watch.
        watch: usize,
        /// The key.
        key: String,
        /// The revision.
        revision: i64,
    },
    /// An event arrived after one with a higher revision.
    #[error("watch {watch}: event at revision {revision} arrived after revision {after}")]
    OutOfOrder {
        /// The watch.
        watch: usize,
        /// The late event's revision.
        revision: i64,
        /// The higher revision already delivered.
        after: i64,
    },
    /// The events of one revision were spread over more than one response.
    #[error("watch {watch}: revision {revision} split across responses")]
    SplitRevision {
        /// The watch.
        watch: usize,
        /// The split revision.
        revision: i64,
    },
    /// An event for a key outside the watched range.
    #[error("watch {watch}: event on {key} at revision {revision} is outside the watched range")]
    OutsideRange {
        /// The watch.
        watch: usize,
        /// The key.
        key: String,
        /// The revision.
        revision: i64,
    },
    /// An event older than the start revision.
    #[error("watch {watch}: event at revision {revision} precedes the start revision {start}")]
    BeforeStart {
        /// The watch.
        watch: usize,
        /// The event's revision.
        revision: i64,
        /// The start revision.
        start: i64,
    },
    /// An event at a revision above its response's header revision.
    #[error("watch {watch}: event at revision {revision} in a response stamped {header}")]
    AboveHeader {
        /// The watch.
        watch: usize,
        /// The event's revision.
        revision: i64,
        /// The header revision.
        header: i64,
    },
    /// An event contradicts the write the history has at that revision or with that value.
    #[error("watch {watch}: event {kind:?} {key} at revision {revision} contradicts op #{op}")]
    Mismatch {
        /// The watch.
        watch: usize,
        /// The event kind.
        kind: EventKind,
        /// The event's key.
        key: String,
        /// The event's revision.
        revision: i64,
        /// The write it contradicts.
        op: u64,
    },
    /// An event no write of the history can explain.
    #[error("watch {watch}: event {kind:?} {key} = {value} at revision {revision} matches no write")]
    Unexplained {
        /// The watch.
        watch: usize,
        /// The event kind.
        kind: EventKind,
        /// The event's key.
        key: String,
        /// The event's value.
        value: String,
        /// The event's revision.
        revision: i64,
    },
    /// A re-created watch did not resume right after the last delivered revision.
    #[error("watch {watch}: resumed from revision {got}, expected {expected}")]
    BadResume {
        /// The watch.
        watch: usize,
        /// Last delivered revision + 1, or the start revision.
        expected: i64,
        /// The revision it resumed from.
        got: i64,
    },
    /// The watch was cancelled as compacted although it needed nothing below the compact revision.
    #[error("watch {watch}: cancelled at compact revision {compact_revision}, but it needed only revisions >= {next}")]
    NeedlessCompactCancel {
        /// The watch.
        watch: usize,
        /// The compact revision in the cancellation.
        compact_revision: i64,
        /// The next revision the watch needed.
        next: i64,
    },
}

/// Runs the watch checks on every log.
pub fn check<'h>(history: &'h History, writes: &Writes<'h>) -> Vec<WatchViolation> {
    let explainer = Explainer::new(writes);
    let mut out = Vec::new();
    for (watch, log) in history.watches.iter().enumerate() {
        Stream::new(watch, log, &explainer, &mut out).run();
    }
    out
}

/// Decides whether an event matches the history's writes.
struct Explainer<'w, 'h> {
    writes: &'w Writes<'h>,
    /// Keys some delete of unknown outcome may have deleted.
    maybe_deleted: HashSet<&'h [u8]>,
    /// Keys some put attached to a lease, which expiry or revocation may have deleted.
    leased: HashSet<&'h [u8]>,
}

impl<'w, 'h> Explainer<'w, 'h> {
    fn new(writes: &'w Writes<'h>) -> Self {
        let maybe_deleted =
            writes.all.iter().filter(|w| w.kind == EventKind::Delete && w.revision.is_none()).map(|w| w.key).collect();
        let leased = writes.all.iter().filter(|w| w.lease.is_some()).map(|w| w.key).collect();
        Explainer { writes, maybe_deleted, leased }
    }

    fn explain(&self, watch: usize, e: &WatchEventRecord) -> Option<WatchViolation> {
        let mismatch =
            |op: u64| WatchViolation::Mismatch { watch, kind: e.kind, key: show(&e.key), revision: e.mod_revision, op };
        if let Some(w) = self.writes.at_revision(e.mod_revision) {
            let same = w.key == e.key && w.kind == e.kind && (e.kind == EventKind::Delete || w.value == e.value);
            return (!same).then(|| mismatch(w.op.id));
        }
        let explained = match e.kind {
            EventKind::Put => match self.writes.writing_value(&e.value) {
                // Known writes were looked up by revision above: this one has another revision.
                Some(w) if w.key != e.key || w.revision.is_some() => return Some(mismatch(w.op.id)),
                Some(_) => true,
                None => false,
            },
            EventKind::Delete => {
                self.maybe_deleted.contains(e.key.as_slice()) || self.leased.contains(e.key.as_slice())
            }
        };
        (!explained).then(|| WatchViolation::Unexplained {
            watch,
            kind: e.kind,
            key: show(&e.key),
            value: show(&e.value),
            revision: e.mod_revision,
        })
    }
}

/// The walk over one watch log.
struct Stream<'s, 'h> {
    watch: usize,
    log: &'h WatchLog,
    range: KeyRange,
    explainer: &'s Explainer<'s, 'h>,
    out: &'s mut Vec<WatchViolation>,
    /// (revision, key) of every event delivered.
    delivered: HashSet<(i64, &'h [u8])>,
    /// The highest event revision delivered, and the response that carried it.
    last: Option<(i64, usize)>,
    /// Every event of the watched range up to this revision has been delivered.
    covered: i64,
    /// The lowest revision the no-gap rule applies from; unknown until the stream shows it for "from now".
    floor: Option<i64>,
    /// The next revision the server-side watcher needs, as far as the client can tell.
    next_needed: Option<i64>,
}

impl<'s, 'h> Stream<'s, 'h> {
    fn new(
        watch: usize,
        log: &'h WatchLog,
        explainer: &'s Explainer<'s, 'h>,
        out: &'s mut Vec<WatchViolation>,
    ) -> Self {
        let start = (log.start_revision > 0).then_some(log.start_revision);
        Stream {
            watch,
            log,
            range: KeyRange::new(&log.key, &log.range_end),
            explainer,
            out,
            delivered: HashSet::new(),
            last: None,
            covered: 0,
            floor: start,
            next_needed: start,
        }
    }

    fn run(mut self) {
        for (i, response) in self.log.responses.iter().enumerate() {
            self.response(i, response);
        }
        self.no_gaps();
        self.cancel();
    }

    fn response(&mut self, i: usize, response: &'h WatchResponseRecord) {
        let first_of_stream = i == 0 || response.resumed_from.is_some();
        if let Some(got) = response.resumed_from {
            let start = (self.log.start_revision > 0).then_some(self.log.start_revision);
            let expected = self.last.map(|(rev, _)| rev + 1).or(start);
            if let Some(expected) = expected.filter(|&e| e != got) {
                self.out.push(WatchViolation::BadResume { watch: self.watch, expected, got });
            }
            self.next_needed = Some(got);
        }
        if self.floor.is_none() {
            self.floor = Some(match response.events.first() {
                Some(e) => e.mod_revision,
                None => response.header_revision + 1,
            });
        }
        for event in &response.events {
            self.event(i, response.header_revision, event);
        }
        if !response.events.is_empty() || !first_of_stream {
            let reached = response.events.iter().map(|e| e.mod_revision).fold(response.header_revision, i64::max);
            self.covered = self.covered.max(reached);
            self.next_needed = Some(self.next_needed.unwrap_or(0).max(reached + 1));
        }
    }

    fn event(&mut self, i: usize, header: i64, e: &'h WatchEventRecord) {
        let (watch, revision) = (self.watch, e.mod_revision);
        if !self.range.contains(&e.key) {
            self.out.push(WatchViolation::OutsideRange { watch, key: show(&e.key), revision });
        }
        if self.log.start_revision > 0 && revision < self.log.start_revision {
            self.out.push(WatchViolation::BeforeStart { watch, revision, start: self.log.start_revision });
        }
        if revision > header {
            self.out.push(WatchViolation::AboveHeader { watch, revision, header });
        }
        if !self.delivered.insert((revision, &e.key)) {
            self.out.push(WatchViolation::Duplicate { watch, key: show(&e.key), revision });
        } else if let Some((last, last_response)) = self.last {
            if revision < last {
                self.out.push(WatchViolation::OutOfOrder { watch, revision, after: last });
            } else if revision == last && last_response != i {
                self.out.push(WatchViolation::SplitRevision { watch, revision });
            }
        }
        if self.last.is_none_or(|(last, _)| revision > last) {
            self.last = Some((revision, i));
        }
        if let Some(violation) = self.explainer.explain(watch, e) {
            self.out.push(violation);
        }
    }

    fn no_gaps(&mut self) {
        let Some(floor) = self.floor else { return };
        for (w, revision) in self.explainer.writes.known() {
            let due = revision >= floor && revision <= self.covered && self.range.contains(w.key);
            if due && !self.delivered.contains(&(revision, w.key)) {
                self.out.push(WatchViolation::Gap {
                    watch: self.watch,
                    op: w.op.id,
                    key: show(w.key),
                    revision,
                    covered: self.covered,
                });
            }
        }
    }

    fn cancel(&mut self) {
        let Some(cancel) = self.log.canceled.as_ref().filter(|c| c.compact_revision > 0) else { return };
        if let Some(next) = self.next_needed.filter(|&n| n >= cancel.compact_revision) {
            self.out.push(WatchViolation::NeedlessCompactCancel {
                watch: self.watch,
                compact_revision: cancel.compact_revision,
                next,
            });
        }
    }
}
