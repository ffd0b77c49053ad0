//! Revision invariants over hand-written histories.

use super::util::Hist;
use crate::checker::RevisionViolation;

fn violations(h: &Hist) -> Vec<RevisionViolation> {
    h.check().revisions
}

#[test]
fn consistent_revisions_pass() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(2, (5, 15), "b", "2", 3);
    h.del(1, (20, 30), "a", 1, 4);
    h.del(1, (40, 50), "a", 0, 4);
    h.cas(2, (60, 70), "b", Some("2"), "3", true, 5);
    h.cas(2, (80, 90), "b", Some("2"), "4", false, 5);
    h.get(1, (100, 110), "b", Some("3"), 5, 5);
    h.get(1, (120, 130), "a", None, 0, 5);
    assert_eq!(violations(&h), vec![]);
    assert!(h.check().is_valid());
}

#[test]
fn delete_of_nothing_may_share_the_current_revision() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.del(1, (20, 30), "b", 0, 2);
    h.put(1, (40, 50), "a", "2", 3);
    assert_eq!(violations(&h), vec![]);
}

#[test]
fn two_writes_with_one_revision_are_caught() {
    let mut h = Hist::new();
    let first = h.put(1, (0, 10), "a", "1", 2);
    let second = h.put(2, (0, 10), "b", "2", 2);
    assert_eq!(violations(&h), vec![RevisionViolation::DuplicateRevision { revision: 2, first, second }]);
}

#[test]
fn write_after_a_completed_write_with_a_lower_revision_is_caught() {
    let mut h = Hist::new();
    let earlier = h.put(1, (0, 10), "a", "1", 5);
    let later = h.put(2, (20, 30), "b", "2", 4);
    assert_eq!(
        violations(&h),
        vec![RevisionViolation::RealTimeOrder { earlier, earlier_revision: 5, later, later_revision: 4 }]
    );
}

#[test]
fn overlapping_writes_may_get_revisions_in_either_order() {
    let mut h = Hist::new();
    h.put(1, (0, 30), "a", "1", 5);
    h.put(2, (20, 40), "b", "2", 4);
    assert_eq!(violations(&h), vec![]);
}

#[test]
fn read_reporting_another_mod_revision_than_its_write_is_caught() {
    let mut h = Hist::new();
    let write = h.put(1, (0, 10), "a", "1", 2);
    let read = h.get(1, (20, 30), "a", Some("1"), 3, 3);
    assert_eq!(
        violations(&h),
        vec![RevisionViolation::ReadModRevision { read, value: "\"1\"".into(), write, expected: 2, got: 3 }]
    );
}

#[test]
fn read_of_a_value_written_with_unknown_outcome_accepts_any_mod_revision() {
    let mut h = Hist::new();
    h.put_unknown(1, 0, "a", "1");
    h.get(2, (20, 30), "a", Some("1"), 7, 7);
    assert_eq!(violations(&h), vec![]);
}

#[test]
fn absent_key_with_a_mod_revision_and_mod_revision_above_header_are_caught() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    let absent = h.get(1, (20, 30), "b", None, 2, 2);
    let ahead = h.get(1, (40, 50), "a", Some("1"), 2, 1);
    let v = violations(&h);
    assert!(v.contains(&RevisionViolation::AbsentWithModRevision { read: absent, mod_revision: 2 }), "{v:?}");
    assert!(v.contains(&RevisionViolation::ModRevisionAboveHeader { read: ahead, mod_revision: 2, header: 1 }));
}

#[test]
fn header_revision_going_back_for_one_client_is_caught() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(2, (20, 30), "a", "2", 3);
    let earlier = h.get(1, (40, 50), "b", None, 0, 3);
    let later = h.get(1, (60, 70), "b", None, 0, 2);
    // Another client lagging behind is not this invariant.
    h.get(3, (80, 90), "b", None, 0, 1);
    assert_eq!(
        violations(&h),
        vec![RevisionViolation::HeaderWentBackwards {
            client: 1,
            earlier,
            earlier_revision: 3,
            later,
            later_revision: 2
        }]
    );
}
