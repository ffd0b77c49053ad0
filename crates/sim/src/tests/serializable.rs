//! The serializable-read check over hand-written histories.

use super::util::{Hist, b};
use crate::checker::{CheckResult, SerializableViolation};
use crate::display::show;
use crate::history::{Call, EventKind, Outcome, WatchEventRecord, WatchLog, WatchResponseRecord};

fn violations(h: &Hist) -> Vec<SerializableViolation> {
    h.check().serializable
}

#[test]
fn a_read_behind_the_leader_that_shows_its_own_revision_passes() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 30), "a", "2", 3);
    h.del(1, (40, 50), "a", 1, 4);
    // Long after the writes, members that are behind still answer as of an older revision.
    h.local_get(2, (100, 110), "a", Some("1"), 2, 2);
    h.local_get(2, (120, 130), "a", Some("2"), 3, 3);
    h.local_get(2, (140, 150), "a", None, 0, 1);
    h.local_get(2, (160, 170), "a", None, 0, 4);
    // A stale read is not a linearizable one: the linearizability and header checks leave it alone.
    h.get(2, (180, 190), "a", None, 0, 4);
    h.local_get(2, (200, 210), "a", Some("1"), 2, 2);
    let report = h.check();
    assert_eq!(report.serializable, vec![]);
    assert_eq!(report.revisions, vec![]);
    assert_eq!(report.linearizability, CheckResult::Ok);
    assert!(report.is_valid(), "{report}");
}

#[test]
fn a_read_that_misses_a_change_within_its_header_is_caught() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 30), "a", "2", 3);
    h.put(1, (40, 50), "b", "x", 4);
    let read = h.local_get(2, (100, 110), "a", Some("1"), 2, 4);
    assert_eq!(violations(&h), vec![SerializableViolation::MissedChange { read, header: 4, shown: 2, changed: 3 }]);
    assert!(h.check().is_invalid());
}

#[test]
fn an_absent_key_after_a_dated_put_is_caught_unless_an_undated_delete_explains_it() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    let read = h.local_get(2, (100, 110), "a", None, 0, 2);
    assert_eq!(violations(&h), vec![SerializableViolation::MissedChange { read, header: 2, shown: 0, changed: 2 }]);

    h.op(3, (20, None), Call::Delete { key: b("a") }, Outcome::Unknown);
    assert_eq!(violations(&h), vec![], "a delete of unknown revision may have removed it");
}

#[test]
fn changes_known_only_from_a_watch_count() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put_unknown(1, 20, "a", "2");
    let read = h.local_get(2, (100, 110), "a", Some("1"), 2, 3);
    assert_eq!(violations(&h), vec![], "the second put's revision is not known yet");
    let event =
        |value: &str, rev| WatchEventRecord { kind: EventKind::Put, key: b("a"), value: b(value), mod_revision: rev };
    h.h.watches.push(WatchLog {
        client: 3,
        key: b("a"),
        range_end: Vec::new(),
        start_revision: 1,
        responses: vec![WatchResponseRecord {
            at: 50,
            header_revision: 3,
            events: vec![event("1", 2), event("2", 3)],
            resumed_from: None,
        }],
        canceled: None,
    });
    assert_eq!(violations(&h), vec![SerializableViolation::MissedChange { read, header: 3, shown: 2, changed: 3 }]);
}

#[test]
fn a_value_no_call_wrote_is_caught() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    let read = h.local_get(2, (100, 110), "a", Some("ghost"), 2, 2);
    assert_eq!(violations(&h), vec![SerializableViolation::UnwrittenValue { read, value: show(b"ghost") }]);
}
