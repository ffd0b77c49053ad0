//! Watch stream invariants over hand-written streams.

use super::util::{Hist, b};
use crate::checker::WatchViolation;
use crate::history::{EventKind, WatchCancel, WatchEventRecord, WatchLog, WatchResponseRecord};

fn put_ev(key: &str, value: &str, rev: i64) -> WatchEventRecord {
    WatchEventRecord { kind: EventKind::Put, key: b(key), value: b(value), mod_revision: rev }
}

fn del_ev(key: &str, rev: i64) -> WatchEventRecord {
    WatchEventRecord { kind: EventKind::Delete, key: b(key), value: Vec::new(), mod_revision: rev }
}

fn resp(header: i64, events: Vec<WatchEventRecord>) -> WatchResponseRecord {
    WatchResponseRecord { at: 1000, header_revision: header, events, resumed_from: None }
}

fn resumed(from: i64, header: i64, events: Vec<WatchEventRecord>) -> WatchResponseRecord {
    WatchResponseRecord { resumed_from: Some(from), ..resp(header, events) }
}

/// a=1@2, b=2@3, a=3@4, delete a@5, a=6@6.
fn writes() -> Hist {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 30), "b", "2", 3);
    h.put(1, (40, 50), "a", "3", 4);
    h.del(1, (60, 70), "a", 1, 5);
    h.put(1, (80, 90), "a", "6", 6);
    h
}

fn watch_a(start: i64, responses: Vec<WatchResponseRecord>) -> WatchLog {
    WatchLog { client: 9, key: b("a"), range_end: Vec::new(), start_revision: start, responses, canceled: None }
}

fn violations(mut h: Hist, log: WatchLog) -> Vec<WatchViolation> {
    h.h.watches.push(log);
    h.check().watch
}

fn clean_responses() -> Vec<WatchResponseRecord> {
    vec![
        resp(6, vec![]), // "created": its header covers nothing
        resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)]),
        resp(6, vec![del_ev("a", 5), put_ev("a", "6", 6)]),
    ]
}

#[test]
fn clean_stream_passes() {
    let mut h = writes();
    h.h.watches.push(watch_a(2, clean_responses()));
    let report = h.check();
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.watches_checked, 1);
}

#[test]
fn missing_event_within_the_covered_revisions_is_a_gap() {
    let mut responses = clean_responses();
    responses[1].events.remove(1);
    assert_eq!(
        violations(writes(), watch_a(2, responses)),
        vec![WatchViolation::Gap { watch: 0, op: 3, key: "\"a\"".into(), revision: 4, covered: 6 }]
    );
}

#[test]
fn writes_beyond_what_the_stream_covered_are_not_gaps() {
    let responses = clean_responses()[..2].to_vec();
    assert_eq!(violations(writes(), watch_a(2, responses)), vec![]);
}

#[test]
fn progress_notification_covers_its_header_revision() {
    let responses = vec![resp(6, vec![]), resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)]), resp(6, vec![])];
    let v = violations(writes(), watch_a(2, responses));
    let gaps: Vec<i64> = v
        .iter()
        .filter_map(|v| if let WatchViolation::Gap { revision, .. } = v { Some(*revision) } else { None })
        .collect();
    assert_eq!(gaps, vec![5, 6], "{v:?}");
}

#[test]
fn duplicate_event_is_caught() {
    let mut responses = clean_responses();
    responses[2].events.insert(0, put_ev("a", "3", 4));
    assert_eq!(
        violations(writes(), watch_a(2, responses)),
        vec![WatchViolation::Duplicate { watch: 0, key: "\"a\"".into(), revision: 4 }]
    );
}

#[test]
fn out_of_order_events_are_caught() {
    let mut responses = clean_responses();
    responses[1].events.reverse();
    assert_eq!(
        violations(writes(), watch_a(2, responses)),
        vec![WatchViolation::OutOfOrder { watch: 0, revision: 2, after: 4 }]
    );
}

/// Two leased keys deleted together by one revoke, at revision 4.
fn revoke_history() -> Hist {
    let mut h = Hist::new();
    h.put_leased(1, (0, 10), "a", "1", 7, 2);
    h.put_leased(1, (20, 30), "b", "2", 7, 3);
    h
}

fn watch_ab(responses: Vec<WatchResponseRecord>) -> WatchLog {
    WatchLog { key: b("a"), range_end: b("c"), ..watch_a(2, responses) }
}

#[test]
fn one_revision_in_one_response_passes_but_split_across_two_is_caught() {
    let together = vec![resp(4, vec![put_ev("a", "1", 2), put_ev("b", "2", 3), del_ev("a", 4), del_ev("b", 4)])];
    assert_eq!(violations(revoke_history(), watch_ab(together)), vec![]);
    let split = vec![
        resp(3, vec![put_ev("a", "1", 2), put_ev("b", "2", 3)]),
        resp(4, vec![del_ev("a", 4)]),
        resp(4, vec![del_ev("b", 4)]),
    ];
    assert_eq!(
        violations(revoke_history(), watch_ab(split)),
        vec![WatchViolation::SplitRevision { watch: 0, revision: 4 }]
    );
}

#[test]
fn resume_right_after_the_last_delivered_revision_passes() {
    let responses = vec![
        resp(6, vec![]),
        resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)]),
        resumed(5, 6, vec![]),
        resp(6, vec![del_ev("a", 5), put_ev("a", "6", 6)]),
    ];
    assert_eq!(violations(writes(), watch_a(2, responses)), vec![]);
}

#[test]
fn resume_from_the_wrong_revision_is_caught() {
    let replaying = vec![
        resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)]),
        resumed(4, 6, vec![put_ev("a", "3", 4), del_ev("a", 5), put_ev("a", "6", 6)]),
    ];
    let v = violations(writes(), watch_a(2, replaying));
    assert!(v.contains(&WatchViolation::BadResume { watch: 0, expected: 5, got: 4 }), "{v:?}");
    assert!(v.contains(&WatchViolation::Duplicate { watch: 0, key: "\"a\"".into(), revision: 4 }), "{v:?}");
    let skipping =
        vec![resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)]), resumed(6, 6, vec![put_ev("a", "6", 6)])];
    let v = violations(writes(), watch_a(2, skipping));
    assert!(v.contains(&WatchViolation::BadResume { watch: 0, expected: 5, got: 6 }), "{v:?}");
    assert!(v.iter().any(|v| matches!(v, WatchViolation::Gap { revision: 5, .. })), "{v:?}");
}

#[test]
fn resume_before_anything_was_delivered_restarts_at_the_start_revision() {
    let responses = vec![resp(6, vec![]), resumed(3, 6, vec![put_ev("a", "3", 4)])];
    let v = violations(writes(), watch_a(2, responses));
    assert!(v.contains(&WatchViolation::BadResume { watch: 0, expected: 2, got: 3 }), "{v:?}");
}

#[test]
fn event_for_a_key_outside_the_range_is_caught() {
    let mut responses = clean_responses();
    responses[1].events.insert(1, put_ev("b", "2", 3));
    assert_eq!(
        violations(writes(), watch_a(2, responses)),
        vec![WatchViolation::OutsideRange { watch: 0, key: "\"b\"".into(), revision: 3 }]
    );
}

#[test]
fn event_before_the_start_revision_is_caught() {
    let responses = vec![resp(6, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)])];
    let v = violations(writes(), watch_a(3, responses));
    assert_eq!(
        v,
        vec![
            WatchViolation::BeforeStart { watch: 0, revision: 2, start: 3 },
            WatchViolation::Gap { watch: 0, op: 4, key: "\"a\"".into(), revision: 5, covered: 6 },
            WatchViolation::Gap { watch: 0, op: 5, key: "\"a\"".into(), revision: 6, covered: 6 }
        ]
    );
}

#[test]
fn events_must_match_the_writes_of_the_history() {
    let wrong_value = vec![resp(2, vec![put_ev("a", "3", 2)])];
    let v = violations(writes(), watch_a(2, wrong_value));
    assert_eq!(
        v,
        vec![WatchViolation::Mismatch { watch: 0, kind: EventKind::Put, key: "\"a\"".into(), revision: 2, op: 1 }]
    );
    let never_written = vec![resp(7, vec![put_ev("a", "ghost", 7)])];
    let v = violations(writes(), watch_a(7, never_written));
    assert_eq!(
        v,
        vec![WatchViolation::Unexplained {
            watch: 0,
            kind: EventKind::Put,
            key: "\"a\"".into(),
            value: "\"ghost\"".into(),
            revision: 7
        }]
    );
    let unexplained_delete = vec![resp(7, vec![del_ev("a", 7)])];
    let v = violations(writes(), watch_a(7, unexplained_delete));
    assert!(
        matches!(v.as_slice(), [WatchViolation::Unexplained { kind: EventKind::Delete, revision: 7, .. }]),
        "{v:?}"
    );
}

#[test]
fn event_of_a_write_with_unknown_outcome_is_accepted() {
    let mut h = writes();
    h.put_unknown(2, 100, "a", "late");
    let responses = vec![resp(7, vec![put_ev("a", "late", 7)])];
    assert_eq!(violations(h, watch_a(7, responses)), vec![]);
}

#[test]
fn watch_from_now_checks_gaps_from_its_first_response() {
    // Created at revision 3: a=3@4 onwards is due.
    let responses = vec![resp(3, vec![]), resp(6, vec![del_ev("a", 5), put_ev("a", "6", 6)])];
    let v = violations(writes(), watch_a(0, responses));
    assert_eq!(v, vec![WatchViolation::Gap { watch: 0, op: 3, key: "\"a\"".into(), revision: 4, covered: 6 }]);
}

#[test]
fn compaction_cancel_is_legal_only_when_the_watch_was_behind() {
    let cancel = |compact_revision| Some(WatchCancel { at: 2000, compact_revision, reason: "compacted".into() });
    let behind = WatchLog { canceled: cancel(4), ..watch_a(2, vec![resp(6, vec![])]) };
    assert_eq!(violations(writes(), behind), vec![]);
    let caught_up = vec![resp(6, vec![]), resp(4, vec![put_ev("a", "1", 2), put_ev("a", "3", 4)])];
    let needless = WatchLog { canceled: cancel(5), ..watch_a(2, caught_up) };
    assert_eq!(
        violations(writes(), needless),
        vec![WatchViolation::NeedlessCompactCancel { watch: 0, compact_revision: 5, next: 5 }]
    );
}
