//! Sequential specifications the linearizability search checks histories against.
//!
//! A [`Model`] says, for a state and an operation with its recorded outcome, whether the operation could
//! have produced that outcome in that state and what state follows. An operation whose outcome is unknown
//! is accepted with whatever its call would have done, since the client never learned the answer.

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::hash::Hash;

use crate::display::Bytes;
use crate::history::{Call, Operation, Outcome};

/// A sequential specification.
pub trait Model {
    /// The state between operations. Hashed and compared to prune configurations the search already saw.
    type State: Clone + Eq + Hash + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op` runs in `state`, or `None` if `op`'s recorded outcome is impossible there.
    fn step(&self, state: &Self::State, op: &Operation) -> Option<Self::State>;
}

/// The state of one key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Register {
    /// The key does not exist.
    Absent,
    /// The key holds this value.
    Value(Vec<u8>),
    /// The key holds a value that no operation of the sub-history reads or compares against.
    Unobserved,
}

/// One etcd key as a register. Covers put, get, delete and compare-and-swap; revisions are checked
/// separately, and lease calls are rejected (they belong to no key).
///
/// Built with [`RegisterModel::for_ops`], it folds every value that no read returns and no compare-and-swap
/// expects into [`Register::Unobserved`]. Such values are indistinguishable to every operation of the
/// sub-history (each only asks "absent?" or "equal to an observed value?"), so verdicts do not change, but
/// states that differed only by an unobserved value coincide and the search cache prunes far more: typically
/// the many timed-out puts whose values nobody ever saw.
#[derive(Clone, Debug, Default)]
pub struct RegisterModel {
    /// Values worth keeping; `None` keeps every value.
    observed: Option<HashSet<Vec<u8>>>,
}

impl RegisterModel {
    /// A model that keeps every value.
    pub fn exact() -> Self {
        RegisterModel { observed: None }
    }

    /// A model for one key's `ops` that folds the values none of them observes.
    pub fn for_ops(ops: &[&Operation]) -> Self {
        let mut observed = HashSet::new();
        for op in ops {
            match (&op.call, &op.outcome) {
                (Call::Get { .. }, Outcome::Get { value: Some(v), .. }) | (Call::Cas { expected: Some(v), .. }, _) => {
                    observed.insert(v.clone());
                }
                _ => {}
            }
        }
        RegisterModel { observed: Some(observed) }
    }

    fn written(&self, value: &[u8]) -> Register {
        match &self.observed {
            Some(observed) if !observed.contains(value) => Register::Unobserved,
            _ => Register::Value(value.to_vec()),
        }
    }
}

impl Register {
    /// Whether the register holds `expected` (`None` = absent).
    fn holds(&self, expected: Option<&[u8]>) -> bool {
        match (self, expected) {
            (Register::Absent, None) => true,
            (Register::Value(v), Some(e)) => v == e,
            _ => false,
        }
    }
}

impl Model for RegisterModel {
    type State = Register;

    fn init(&self) -> Self::State {
        Register::Absent
    }

    fn step(&self, state: &Self::State, op: &Operation) -> Option<Self::State> {
        match (&op.call, &op.outcome) {
            (Call::Put { value, .. }, Outcome::Put { .. } | Outcome::Unknown) => Some(self.written(value)),
            (Call::Get { .. }, Outcome::Get { value, .. }) => state.holds(value.as_deref()).then(|| state.clone()),
            (Call::Get { .. }, Outcome::Unknown) => Some(state.clone()),
            (Call::Delete { .. }, Outcome::Delete { deleted, .. }) => {
                (*deleted == i64::from(*state != Register::Absent)).then_some(Register::Absent)
            }
            (Call::Delete { .. }, Outcome::Unknown) => Some(Register::Absent),
            (Call::Cas { expected, value, .. }, Outcome::Cas { .. } | Outcome::Unknown) => {
                let holds = state.holds(expected.as_deref());
                match op.outcome {
                    Outcome::Cas { succeeded, .. } if succeeded != holds => None,
                    _ if holds => Some(self.written(value)),
                    _ => Some(state.clone()),
                }
            }
            // Lease calls, and outcomes of the wrong kind.
            _ => None,
        }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Register::Absent => f.write_str("absent"),
            Register::Value(v) => write!(f, "{}", Bytes(v)),
            Register::Unobserved => f.write_str("a value no operation observes"),
        }
    }
}

impl Debug for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Model, Register, RegisterModel};
    use crate::history::{Call, Operation, Outcome};

    fn op(call: Call, outcome: Outcome) -> Operation {
        Operation { id: 0, client: 0, invoke: 0, complete: Some(1), call, outcome }
    }

    fn v(s: &str) -> Register {
        Register::Value(s.as_bytes().to_vec())
    }

    fn get(value: Option<&str>) -> Operation {
        let value = value.map(|s| s.as_bytes().to_vec());
        op(Call::Get { key: b"k".to_vec() }, Outcome::Get { value, mod_revision: 0, revision: 1 })
    }

    fn put(value: &str, outcome: Outcome) -> Operation {
        op(Call::Put { key: b"k".to_vec(), value: value.as_bytes().to_vec(), lease: None }, outcome)
    }

    fn cas(expected: Option<&str>, outcome: Outcome) -> Operation {
        let expected = expected.map(|s| s.as_bytes().to_vec());
        op(Call::Cas { key: b"k".to_vec(), expected, value: b"n".to_vec() }, outcome)
    }

    const EXACT: RegisterModel = RegisterModel { observed: None };

    #[test]
    fn get_must_return_the_current_value() {
        assert_eq!(EXACT.step(&v("a"), &get(Some("a"))), Some(v("a")));
        assert_eq!(EXACT.step(&v("a"), &get(Some("b"))), None);
        assert_eq!(EXACT.step(&v("a"), &get(None)), None);
        assert_eq!(EXACT.step(&Register::Absent, &get(None)), Some(Register::Absent));
    }

    #[test]
    fn delete_reports_one_only_when_the_key_exists() {
        let del = |deleted| op(Call::Delete { key: b"k".to_vec() }, Outcome::Delete { deleted, revision: 1 });
        assert_eq!(EXACT.step(&v("a"), &del(1)), Some(Register::Absent));
        assert_eq!(EXACT.step(&v("a"), &del(0)), None);
        assert_eq!(EXACT.step(&Register::Absent, &del(0)), Some(Register::Absent));
        assert_eq!(EXACT.step(&Register::Absent, &del(1)), None);
        assert_eq!(EXACT.step(&Register::Unobserved, &del(1)), Some(Register::Absent));
    }

    #[test]
    fn cas_succeeds_exactly_when_the_expected_value_is_current() {
        let ok = Outcome::Cas { succeeded: true, revision: 2 };
        let no = Outcome::Cas { succeeded: false, revision: 2 };
        assert_eq!(EXACT.step(&v("a"), &cas(Some("a"), ok.clone())), Some(v("n")));
        assert_eq!(EXACT.step(&v("a"), &cas(Some("b"), ok.clone())), None);
        assert_eq!(EXACT.step(&v("a"), &cas(Some("b"), no.clone())), Some(v("a")));
        assert_eq!(EXACT.step(&Register::Absent, &cas(None, ok)), Some(v("n")));
        assert_eq!(EXACT.step(&Register::Absent, &cas(None, no)), None);
    }

    #[test]
    fn unknown_outcomes_take_the_effect_the_call_would_have_had() {
        assert_eq!(EXACT.step(&Register::Absent, &put("x", Outcome::Unknown)), Some(v("x")));
        assert_eq!(EXACT.step(&v("a"), &op(Call::Get { key: b"k".to_vec() }, Outcome::Unknown)), Some(v("a")));
        assert_eq!(EXACT.step(&v("a"), &cas(Some("a"), Outcome::Unknown)), Some(v("n")));
        assert_eq!(EXACT.step(&v("a"), &cas(None, Outcome::Unknown)), Some(v("a")));
    }

    #[test]
    fn an_outcome_of_the_wrong_kind_is_impossible() {
        assert_eq!(EXACT.step(&Register::Absent, &put("x", Outcome::Cas { succeeded: true, revision: 2 })), None);
    }

    #[test]
    fn values_nobody_observes_fold_into_one_state() {
        let ops = [
            put("seen", Outcome::Unknown),
            put("lost", Outcome::Unknown),
            get(Some("seen")),
            cas(Some("cmp"), Outcome::Unknown),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let model = RegisterModel::for_ops(&refs);
        assert_eq!(model.step(&Register::Absent, &ops[0]), Some(v("seen")));
        assert_eq!(model.step(&Register::Absent, &ops[1]), Some(Register::Unobserved));
        assert_eq!(model.step(&v("seen"), &put("other", Outcome::Unknown)), Some(Register::Unobserved));
        assert_eq!(
            model.step(&Register::Unobserved, &get(Some("seen"))),
            None,
            "an unobserved value is no observed one"
        );
        assert_eq!(
            model.step(&Register::Unobserved, &cas(Some("cmp"), Outcome::Cas { succeeded: false, revision: 2 })),
            Some(Register::Unobserved)
        );
        assert_eq!(model.step(&Register::Unobserved, &get(None)), None, "an unobserved value is present");
    }
}
