//! The combined report and its human summary.

use super::util::Hist;
use crate::checker::{CheckResult, MalformedOp};
use crate::history::{Call, Outcome};

#[test]
fn summary_names_the_verdict_the_key_and_the_offending_op() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    h.put(1, (20, 30), "a", "2", 3);
    h.get(2, (40, 50), "a", Some("1"), 2, 3);
    let report = h.check();
    assert!(report.is_invalid() && !report.is_valid() && !report.is_unknown());
    assert_eq!(report.linearizability, CheckResult::Invalid);
    let text = report.to_string();
    assert!(text.starts_with("history INVALID: linearizability INVALID (3 ops over 1 keys)"), "{text}");
    assert!(text.contains("key \"a\" is not linearizable"), "{text}");
    assert!(text.contains("#3 client 2 [40..50] get(\"a\") -> \"1\""), "{text}");
}

#[test]
fn valid_summary_is_one_line() {
    let mut h = Hist::new();
    h.put(1, (0, 10), "a", "1", 2);
    let report = h.check();
    assert!(report.is_valid());
    assert_eq!(report.to_string().lines().count(), 1, "{report}");
}

#[test]
fn malformed_operations_are_reported() {
    let mut h = Hist::new();
    h.put(1, (10, 5), "a", "1", 2);
    h.op(1, (20, Some(30)), Call::Get { key: b"a".to_vec() }, Outcome::Put { revision: 2 });
    h.op(1, (40, None), Call::Get { key: b"a".to_vec() }, Outcome::Get { value: None, mod_revision: 0, revision: 2 });
    h.h.ops[2].id = 1;
    let report = h.check();
    assert_eq!(
        report.malformed,
        vec![
            MalformedOp::CompletesBeforeInvoke { op: 1, invoke: 10, complete: 5 },
            MalformedOp::OutcomeMismatch { op: 2 },
            MalformedOp::DuplicateId { id: 1 },
            MalformedOp::KnownOutcomeWithoutCompletion { op: 1 },
        ]
    );
    assert!(report.is_invalid());
}
