//! Sequential specifications the linearizability search checks histories against.
//!
//! A [`Model`] says, for a state and an operation with its recorded outcome, whether the operation could
//! have produced that outcome in that state and what state follows. An operation whose outcome is unknown
//! is accepted with whatever its call would have done, since the client never learned the answer.

use std::fmt::Debug;
use std::hash::Hash;

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

/// One etcd key as a register: `None` when absent, otherwise its value. Covers put, get, delete and
/// compare-and-swap; revisions are checked separately, and lease calls are rejected (they belong to no key).
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<Vec<u8>>;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, op: &Operation) -> Option<Self::State> {
        match (&op.call, &op.outcome) {
            (Call::Put { value, .. }, Outcome::Put { .. } | Outcome::Unknown) => Some(Some(value.clone())),
            (Call::Get { .. }, Outcome::Get { value, .. }) => (value == state).then(|| state.clone()),
            (Call::Get { .. }, Outcome::Unknown) => Some(state.clone()),
            (Call::Delete { .. }, Outcome::Delete { deleted, .. }) => {
                (*deleted == i64::from(state.is_some())).then_some(None)
            }
            (Call::Delete { .. }, Outcome::Unknown) => Some(None),
            (Call::Cas { expected, value, .. }, Outcome::Cas { .. } | Outcome::Unknown) => {
                let holds = expected == state;
                match op.outcome {
                    Outcome::Cas { succeeded, .. } if succeeded != holds => None,
                    _ if holds => Some(Some(value.clone())),
                    _ => Some(state.clone()),
                }
            }
            // Lease calls, and outcomes of the wrong kind.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Model, RegisterModel};
    use crate::history::{Call, Operation, Outcome};

    fn op(call: Call, outcome: Outcome) -> Operation {
        Operation { id: 0, client: 0, invoke: 0, complete: Some(1), call, outcome }
    }

    fn v(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn get_must_return_the_current_value() {
        let get = |value| op(Call::Get { key: b"k".to_vec() }, Outcome::Get { value, mod_revision: 0, revision: 1 });
        assert_eq!(RegisterModel.step(&v("a"), &get(v("a"))), Some(v("a")));
        assert_eq!(RegisterModel.step(&v("a"), &get(v("b"))), None);
        assert_eq!(RegisterModel.step(&None, &get(None)), Some(None));
    }

    #[test]
    fn delete_reports_one_only_when_the_key_exists() {
        let del = |deleted| op(Call::Delete { key: b"k".to_vec() }, Outcome::Delete { deleted, revision: 1 });
        assert_eq!(RegisterModel.step(&v("a"), &del(1)), Some(None));
        assert_eq!(RegisterModel.step(&v("a"), &del(0)), None);
        assert_eq!(RegisterModel.step(&None, &del(0)), Some(None));
        assert_eq!(RegisterModel.step(&None, &del(1)), None);
    }

    #[test]
    fn cas_succeeds_exactly_when_the_expected_value_is_current() {
        let cas = |expected, outcome| op(Call::Cas { key: b"k".to_vec(), expected, value: b"n".to_vec() }, outcome);
        let ok = Outcome::Cas { succeeded: true, revision: 2 };
        let no = Outcome::Cas { succeeded: false, revision: 2 };
        assert_eq!(RegisterModel.step(&v("a"), &cas(v("a"), ok.clone())), Some(v("n")));
        assert_eq!(RegisterModel.step(&v("a"), &cas(v("b"), ok.clone())), None);
        assert_eq!(RegisterModel.step(&v("a"), &cas(v("b"), no.clone())), Some(v("a")));
        assert_eq!(RegisterModel.step(&None, &cas(None, ok)), Some(v("n")));
        assert_eq!(RegisterModel.step(&None, &cas(None, no)), None);
    }

    #[test]
    fn unknown_outcomes_take_the_effect_the_call_would_have_had() {
        let unknown = |call| op(call, Outcome::Unknown);
        let put = unknown(Call::Put { key: b"k".to_vec(), value: b"x".to_vec(), lease: None });
        assert_eq!(RegisterModel.step(&None, &put), Some(v("x")));
        assert_eq!(RegisterModel.step(&v("a"), &unknown(Call::Get { key: b"k".to_vec() })), Some(v("a")));
        let cas = |expected| unknown(Call::Cas { key: b"k".to_vec(), expected, value: b"n".to_vec() });
        assert_eq!(RegisterModel.step(&v("a"), &cas(v("a"))), Some(v("n")));
        assert_eq!(RegisterModel.step(&v("a"), &cas(None)), Some(v("a")));
    }

    #[test]
    fn an_outcome_of_the_wrong_kind_is_impossible() {
        let put = op(
            Call::Put { key: b"k".to_vec(), value: b"x".to_vec(), lease: None },
            Outcome::Cas { succeeded: true, revision: 2 },
        );
        assert_eq!(RegisterModel.step(&None, &put), None);
    }
}
