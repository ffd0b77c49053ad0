//! Sanity of the recording itself: a malformed history would make every other verdict meaningless.

use std::collections::HashSet;

use crate::history::{Call, History, Outcome};

/// An operation the runner recorded inconsistently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedOp {
    /// Two operations share an id.
    #[error("op id {id} is used more than once")]
    DuplicateId {
        /// The repeated id.
        id: u64,
    },
    /// An operation completed before it was invoked.
    #[error("op #{op} completes at {complete} before its invocation at {invoke}")]
    CompletesBeforeInvoke {
        /// The operation.
        op: u64,
        /// Its invocation time.
        invoke: u64,
        /// Its completion time.
        complete: u64,
    },
    /// A definite answer without the time it arrived.
    #[error("op #{op} has a known outcome but no completion time")]
    KnownOutcomeWithoutCompletion {
        /// The operation.
        op: u64,
    },
    /// A known outcome of a different kind than the call (say, a put answered with a read).
    #[error("op #{op} has an outcome of the wrong kind for its call")]
    OutcomeMismatch {
        /// The operation.
        op: u64,
    },
}

/// Checks ids, times and outcome kinds.
pub fn check(history: &History) -> Vec<MalformedOp> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for op in &history.ops {
        if !ids.insert(op.id) {
            out.push(MalformedOp::DuplicateId { id: op.id });
        }
        if let Some(complete) = op.complete.filter(|&c| c < op.invoke) {
            out.push(MalformedOp::CompletesBeforeInvoke { op: op.id, invoke: op.invoke, complete });
        }
        if op.complete.is_none() && op.outcome.is_known() {
            out.push(MalformedOp::KnownOutcomeWithoutCompletion { op: op.id });
        }
        if !outcome_fits(&op.call, &op.outcome) {
            out.push(MalformedOp::OutcomeMismatch { op: op.id });
        }
    }
    out
}

fn outcome_fits(call: &Call, outcome: &Outcome) -> bool {
    matches!(
        (call, outcome),
        (_, Outcome::Unknown | Outcome::Failed { .. })
            | (Call::Put { .. }, Outcome::Put { .. })
            | (Call::Get { .. } | Call::LocalGet { .. }, Outcome::Get { .. })
            | (Call::Delete { .. }, Outcome::Delete { .. })
            | (Call::Cas { .. }, Outcome::Cas { .. })
            | (Call::LeaseGrant { .. }, Outcome::LeaseGrant { .. })
            | (Call::LeaseKeepAlive { .. }, Outcome::LeaseKeepAlive { .. })
            | (Call::LeaseRevoke { .. }, Outcome::LeaseRevoke { .. })
    )
}
