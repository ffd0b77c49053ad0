//! Hand-written histories with a known linearizability verdict.

use super::util::{Hist, b};
use crate::checker::{CheckResult, check_linearizability};

const STEPS: u64 = 1_000_000;

fn verdict(h: &Hist) -> CheckResult {
    check_linearizability(&h.h, STEPS).result
}

/// Asserts that exactly `key` is reported non-linearizable, and returns the failure's text.
fn invalid_key(h: &Hist, key: &str) -> String {
    let lin = check_linearizability(&h.h, STEPS);
    assert_eq!(lin.result, CheckResult::Invalid);
    let keys: Vec<Vec<u8>> = lin.failures.iter().map(|f| f.key.clone()).collect();
    assert_eq!(keys, vec![b(key)], "only the broken key is reported");
    lin.failures[0].to_string()
}

#[test]
fn sequential_history_of_every_kv_op_is_linearizable() {
    let mut h = Hist::new();
    h.get(1, (0, 5), "a", None, 0, 1);
    h.put(1, (10, 20), "a", "1", 2);
    h.get(1, (30, 40), "a", Some("1"), 2, 2);
    h.cas(1, (50, 60), "a", Some("1"), "2", true, 3);
    h.cas(1, (70, 80), "a", Some("1"), "3", false, 3);
    h.get(1, (90, 100), "a", Some("2"), 3, 3);
    h.del(1, (110, 120), "a", 1, 4);
    h.del(1, (130, 140), "a", 0, 4);
    h.get(1, (150, 160), "a", None, 0, 4);
    assert_eq!(verdict(&h), CheckResult::Ok);
}

#[test]
fn read_overlapping_a_put_may_see_the_old_or_the_new_value() {
    for seen in ["old", "new"] {
        let mut h = Hist::new();
        h.put(1, (0, 10), "a", "old", 2);
        h.put(1, (20, 100), "a", "new", 3);
        h.get(2, (30, 40), "a", Some(seen), 0, 0);
        assert_eq!(verdict(&h), CheckResult::Ok, "reading {seen} during the put");
    }
}

#[test]
fn concurrent_puts_may_take_effect_in_either_order() {
    for last in ["x", "y"] {
        let mut h = Hist::new();
        h.put(1, (0, 100), "a", "x", 0);
        h.put(2, (5, 90), "a", "y", 0);
        h.get(3, (200, 210), "a", Some(last), 0, 0);
        h.get(3, (220, 230), "a", Some(last), 0, 0);
        assert_eq!(verdict(&h), CheckResult::Ok, "{last} written last");
    }
}

#[test]
fn operations_touching_at_one_instant_count_as_concurrent() {
    let mut h = Hist::new();
    h.put(1, (0, 50), "a", "x", 2);
    // Invoked exactly when the put completed: may still be ordered before it.
    h.get(2, (50, 60), "a", None, 0, 1);
    assert_eq!(verdict(&h), CheckResult::Ok);
}

#[test]
fn cas_race_with_one_winner_is_linearizable() {
    let mut h = Hist::new();
    h.cas(1, (0, 100), "a", None, "c1", true, 2);
    h.cas(2, (10, 90), "a", None, "c2", false, 2);
    h.get(3, (200, 210), "a", Some("c1"), 2, 2);
    assert_eq!(verdict(&h), CheckResult::Ok);
}

#[test]
fn unknown_put_later_observed_is_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put_unknown(1, 20, "a", "2");
    h.get(2, (30, 40), "a", Some("1"), 2, 2);
    h.get(2, (500, 510), "a", Some("2"), 3, 3);
    h.get(2, (600, 610), "a", Some("2"), 3, 3);
    assert_eq!(verdict(&h), CheckResult::Ok);
}

#[test]
fn unknown_put_never_observed_is_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put_unknown(1, 20, "a", "2");
    h.get(2, (500, 510), "a", Some("1"), 2, 2);
    h.get(2, (900, 910), "a", Some("1"), 2, 2);
    assert_eq!(verdict(&h), CheckResult::Ok);
}

#[test]
fn unknown_put_cannot_take_effect_before_it_was_invoked() {
    let mut h = Hist::new();
    h.get(2, (0, 10), "a", Some("2"), 3, 3);
    h.put_unknown(1, 20, "a", "2");
    invalid_key(&h, "a");
}

#[test]
fn unknown_put_observed_then_unobserved_is_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put_unknown(1, 20, "a", "2");
    h.get(2, (30, 40), "a", Some("2"), 3, 3);
    h.get(2, (50, 60), "a", Some("1"), 2, 3);
    invalid_key(&h, "a");
}

#[test]
fn failed_op_is_ignored() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put_failed(1, (20, 30), "a", "2");
    h.get(2, (40, 50), "a", Some("1"), 2, 2);
    assert_eq!(verdict(&h), CheckResult::Ok);
    // ... and is not a write anyone may observe.
    h.get(2, (60, 70), "a", Some("2"), 3, 3);
    invalid_key(&h, "a");
}

#[test]
fn stale_read_after_a_completed_write_is_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 30), "a", "2", 3);
    let stale = h.get(2, (40, 50), "a", Some("1"), 2, 3);
    let text = invalid_key(&h, "a");
    assert!(text.contains(&format!("#{stale} ")), "the explanation names the stale read: {text}");
    let lin = check_linearizability(&h.h, STEPS);
    assert_eq!(lin.failures[0].prefix, vec![1, 2], "both puts linearize, the read cannot follow them");
    assert_eq!(lin.failures[0].blocked.as_ref().map(|o| o.id), Some(stale));
}

#[test]
fn read_of_a_value_never_written_is_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.get(2, (20, 30), "a", Some("ghost"), 2, 2);
    invalid_key(&h, "a");
}

#[test]
fn two_cas_succeeding_from_the_same_expected_value_are_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "0", 2);
    h.cas(1, (20, 100), "a", Some("0"), "c1", true, 3);
    h.cas(2, (20, 100), "a", Some("0"), "c2", true, 4);
    invalid_key(&h, "a");
}

#[test]
fn read_going_back_to_an_older_value_is_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 100), "a", "2", 3);
    h.get(2, (30, 40), "a", Some("2"), 3, 3);
    h.get(2, (50, 60), "a", Some("1"), 2, 3);
    invalid_key(&h, "a");
}

#[test]
fn delete_of_a_present_key_reporting_zero_is_not_linearizable() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.del(1, (20, 30), "a", 0, 2);
    invalid_key(&h, "a");
}

#[test]
fn delete_of_an_absent_key_reporting_one_is_not_linearizable() {
    let mut h = Hist::new();
    h.del(1, (20, 30), "a", 1, 2);
    invalid_key(&h, "a");
}

#[test]
fn only_the_broken_key_is_reported_among_healthy_ones() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "a1", 2);
    h.put(2, (0, 10), "b", "b1", 3);
    h.put(3, (0, 10), "c", "c1", 4);
    h.get(1, (20, 30), "a", Some("a1"), 2, 4);
    h.get(2, (20, 30), "b", None, 0, 4);
    h.get(3, (20, 30), "c", Some("c1"), 4, 4);
    invalid_key(&h, "b");
    let lin = check_linearizability(&h.h, STEPS);
    assert_eq!((lin.keys_checked, lin.ops_checked), (3, 6));
}
