//! The permission check over hand-written authentication records.

use crate::auth_ops::{AuthOp, AuthOutcome, AuthPath, AuthRecord, FinalScan, KeyValue, SENTINEL_VALUE, Span};
use crate::checker::{AuthViolation, CheckOptions, check};
use crate::history::{Call, History, Operation, Outcome};

fn op(path: AuthPath, spans: Vec<Span>, outcome: AuthOutcome) -> AuthOp {
    AuthOp {
        id: 0,
        client: 300,
        user: "app".into(),
        member: "http://b1:2379".into(),
        path,
        spans,
        writes: Vec::new(),
        invoke: 1,
        complete: (!matches!(outcome, AuthOutcome::Unknown)).then_some(2),
        outcome,
    }
}

fn denied() -> AuthOutcome {
    AuthOutcome::Refused { code: tonic::Code::PermissionDenied as i32, message: "etcdserver: permission denied".into() }
}

fn served() -> AuthOutcome {
    AuthOutcome::Succeeded { returned: Vec::new() }
}

fn history(ops: Vec<AuthOp>, scan: Option<FinalScan>) -> History {
    let ops = ops.into_iter().enumerate().map(|(i, mut op)| {
        op.id = i as u64;
        op
    });
    let auth = AuthRecord { callers: Vec::new(), enabled_at: Some(1), ops: ops.collect(), final_scan: scan };
    History { auth: Some(auth), ..History::default() }
}

fn violations(h: &History) -> Vec<AuthViolation> {
    check(h, &CheckOptions::default()).auth
}

fn clean_scan() -> FinalScan {
    FinalScan { at: 9, member: "a1".into(), leaked: Vec::new(), sentinel: Some(SENTINEL_VALUE.to_vec()) }
}

#[test]
fn refusals_outside_and_successes_inside_are_fine() {
    let h = history(
        vec![
            op(AuthPath::Put, vec![Span::key(b"k1")], denied()),
            op(AuthPath::Txn, vec![Span::key(b"app/1"), Span::key(b"secret/x")], denied()),
            op(AuthPath::SerializableRange, vec![Span::range(b"app/", b"app0")], served()),
            op(AuthPath::Put, vec![Span::key(b"k2")], AuthOutcome::Unknown),
            op(
                AuthPath::Delete,
                vec![Span::key(b"k2")],
                AuthOutcome::Refused { code: 14, message: "no leader".into() },
            ),
        ],
        Some(clean_scan()),
    );
    assert_eq!(violations(&h), Vec::new());
}

#[test]
fn a_served_operation_outside_the_prefix_is_named_with_its_path() {
    let h = history(
        vec![op(AuthPath::Txn, vec![Span::key(b"app/1"), Span::key(b"app/1"), Span::key(b"k3")], served())],
        Some(clean_scan()),
    );
    let v = violations(&h);
    assert_eq!(v.len(), 1, "{v:?}");
    let text = v[0].to_string();
    assert!(text.contains("Txn") && text.contains("k3") && text.contains("http://b1:2379"), "{text}");
}

#[test]
fn a_watch_or_range_crossing_the_prefix_that_answered_is_caught() {
    let returned = AuthOutcome::Succeeded { returned: vec![b"k1".to_vec()] };
    let h = history(
        vec![
            op(AuthPath::WatchCreate, vec![Span::range(b"app/", b"l")], served()),
            op(AuthPath::LinearizableRange, vec![Span::range(b"app/", b"l")], returned),
        ],
        None,
    );
    assert_eq!(violations(&h).len(), 2);
}

#[test]
fn wrong_refusal_texts_and_refusals_inside_the_prefix_are_caught() {
    let inside = op(AuthPath::Put, vec![Span::key(b"app/1")], denied());
    let odd = AuthOutcome::Refused { code: tonic::Code::PermissionDenied as i32, message: "nope".into() };
    let h = history(vec![inside, op(AuthPath::Put, vec![Span::key(b"k1")], odd)], None);
    let v = violations(&h);
    assert!(matches!(v[0], AuthViolation::RefusedInside { .. }), "{v:?}");
    assert!(matches!(v[1], AuthViolation::WrongText { .. }), "{v:?}");
}

#[test]
fn a_value_written_outside_and_seen_or_left_in_the_store_is_caught() {
    let mut put = op(AuthPath::Put, vec![Span::key(b"k1")], AuthOutcome::Unknown);
    put.writes = vec![KeyValue { key: b"k1".to_vec(), value: b"app-user:300-4".to_vec() }];
    let scan = FinalScan {
        leaked: vec![KeyValue { key: b"k1".to_vec(), value: b"app-user:300-4".to_vec() }],
        sentinel: None,
        ..clean_scan()
    };
    let mut h = history(vec![put], Some(scan));
    h.ops.push(Operation {
        id: 0,
        client: 0,
        invoke: 5,
        complete: Some(6),
        call: Call::Get { key: b"k1".to_vec() },
        outcome: Outcome::Get { value: Some(b"app-user:300-4".to_vec()), mod_revision: 3, revision: 3 },
    });
    let v = violations(&h);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v.iter().filter(|v| matches!(v, AuthViolation::Leaked { .. })).count() == 2);
    assert!(v.iter().any(|v| matches!(v, AuthViolation::Sentinel { .. })), "{v:?}");
    assert!(v[0].to_string().contains("#0 Put"), "{}", v[0]);
}
