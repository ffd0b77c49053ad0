//! Linearizability of the key-value operations: the history is split per key and each key is searched with
//! the register model; the verdicts combine into one.

use std::fmt;

use super::model::RegisterModel;
use super::partition;
use super::report::CheckResult;
use super::wgl::{self, SearchResult};
use crate::display::Bytes;
use crate::history::{History, Operation};

/// How many of the last linearized operations a failure shows for context.
const CONTEXT_OPS: usize = 5;

/// The verdict on every key, and an explanation for each key that is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linearizability {
    /// Invalid if any key is, else Unknown if any key ran out of steps, else Ok.
    pub result: CheckResult,
    /// One explanation per non-linearizable key, in key order.
    pub failures: Vec<KeyFailure>,
    /// Keys whose search hit the step limit.
    pub unknown_keys: Vec<Vec<u8>>,
    /// Operations searched (lease calls, failed operations and reads with unknown outcome are not).
    pub ops_checked: usize,
    /// Keys searched.
    pub keys_checked: usize,
}

/// Why one key's sub-history is not linearizable: the longest linearizable prefix found, and the operations
/// none of which could come next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFailure {
    /// The key.
    pub key: Vec<u8>,
    /// How many operations the key has.
    pub key_ops: usize,
    /// Ids of the longest linearizable prefix, in linearization order.
    pub prefix: Vec<u64>,
    /// The last few operations of that prefix, for context.
    pub prefix_tail: Vec<Operation>,
    /// The register after the prefix, rendered.
    pub state: String,
    /// The operation that completed before any candidate could be linearized.
    pub blocked: Option<Operation>,
    /// The operations that could have gone next; none of them leads to a linearization.
    pub candidates: Vec<Operation>,
}

/// Checks every key of `history` with the register model, spending at most `max_steps_per_key` per key.
pub fn check(history: &History, max_steps_per_key: u64) -> Linearizability {
    let partitions = partition::by_key(history);
    let mut report = Linearizability {
        result: CheckResult::Ok,
        failures: Vec::new(),
        unknown_keys: Vec::new(),
        ops_checked: partitions.iter().map(|p| p.ops.len()).sum(),
        keys_checked: partitions.len(),
    };
    for part in &partitions {
        match wgl::search(&RegisterModel::for_ops(&part.ops), &part.ops, max_steps_per_key) {
            SearchResult::Linearizable => {}
            SearchResult::StepLimit { .. } => report.unknown_keys.push(part.key.to_vec()),
            SearchResult::NotLinearizable(deepest) => {
                let state = deepest.state.to_string();
                let pick = |i: usize| part.ops[i].clone();
                let tail_from = deepest.prefix.len().saturating_sub(CONTEXT_OPS);
                report.failures.push(KeyFailure {
                    key: part.key.to_vec(),
                    key_ops: part.ops.len(),
                    prefix: deepest.prefix.iter().map(|&i| part.ops[i].id).collect(),
                    prefix_tail: deepest.prefix[tail_from..].iter().map(|&i| pick(i)).collect(),
                    state,
                    blocked: deepest.blocked.map(pick),
                    candidates: deepest.candidates.iter().map(|&i| pick(i)).collect(),
                });
            }
        }
    }
    report.result = if !report.failures.is_empty() {
        CheckResult::Invalid
    } else if !report.unknown_keys.is_empty() {
        CheckResult::Unknown
    } else {
        CheckResult::Ok
    };
    report
}

impl fmt::Display for KeyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {} is not linearizable: longest linearizable prefix has {} of {} ops, leaving the key {}",
            Bytes(&self.key),
            self.prefix.len(),
            self.key_ops,
            self.state
        )?;
        for op in &self.prefix_tail {
            writeln!(f, "    linearized: {op}")?;
        }
        if let Some(op) = &self.blocked {
            writeln!(f, "  then this op completed before anything else could be linearized: {op}")?;
        }
        for op in &self.candidates {
            writeln!(f, "    candidate (leads to no linearization): {op}")?;
        }
        Ok(())
    }
}
