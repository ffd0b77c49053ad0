//! The writes of a history — puts, deletes that deleted something and compare-and-swaps that succeeded, plus
//! those whose outcome is unknown — indexed by revision and by value for the revision and watch checks.

use std::collections::HashMap;

use crate::history::{Call, EventKind, History, Operation, Outcome};

/// One operation that changed, or may have changed, a key.
#[derive(Clone, Copy, Debug)]
pub struct Write<'h> {
    /// The operation.
    pub op: &'h Operation,
    /// The key it writes.
    pub key: &'h [u8],
    /// Put (also for compare-and-swap) or delete.
    pub kind: EventKind,
    /// The value written; empty for a delete.
    pub value: &'h [u8],
    /// The lease a put attached.
    pub lease: Option<i64>,
    /// The revision it created, when the outcome is known; `None` when it may or may not have happened.
    pub revision: Option<i64>,
}

/// Every write of a history, with lookups.
#[derive(Debug, Default)]
pub struct Writes<'h> {
    /// In history order.
    pub all: Vec<Write<'h>>,
    by_revision: HashMap<i64, usize>,
    by_value: HashMap<&'h [u8], usize>,
}

impl<'h> Writes<'h> {
    /// Collects the writes of `history`.
    pub fn of(history: &'h History) -> Self {
        let mut writes = Writes::default();
        for op in &history.ops {
            let Some(write) = as_write(op) else { continue };
            let i = writes.all.len();
            if let Some(rev) = write.revision {
                writes.by_revision.entry(rev).or_insert(i);
            }
            if write.kind == EventKind::Put {
                writes.by_value.entry(write.value).or_insert(i);
            }
            writes.all.push(write);
        }
        writes
    }

    /// The known write that created `revision` (the first, if the history wrongly has several).
    pub fn at_revision(&self, revision: i64) -> Option<&Write<'h>> {
        self.by_revision.get(&revision).map(|&i| &self.all[i])
    }

    /// The put or compare-and-swap that wrote `value` (values are unique per write).
    pub fn writing_value(&self, value: &[u8]) -> Option<&Write<'h>> {
        self.by_value.get(value).map(|&i| &self.all[i])
    }

    /// Writes whose revision is known.
    pub fn known(&self) -> impl Iterator<Item = (&Write<'h>, i64)> {
        self.all.iter().filter_map(|w| w.revision.map(|r| (w, r)))
    }
}

/// The write `op` made or may have made, if any.
fn as_write(op: &Operation) -> Option<Write<'_>> {
    let revision = match (&op.call, &op.outcome) {
        (_, Outcome::Unknown) => None,
        (Call::Put { .. }, Outcome::Put { revision }) => Some(*revision),
        (Call::Delete { .. }, Outcome::Delete { deleted, revision }) if *deleted > 0 => Some(*revision),
        (Call::Cas { .. }, Outcome::Cas { succeeded: true, revision }) => Some(*revision),
        _ => return None,
    };
    let (key, kind, value, lease): (&[u8], _, &[u8], _) = match &op.call {
        Call::Put { key, value, lease } => (key, EventKind::Put, value, lease.filter(|&l| l != 0)),
        Call::Cas { key, value, .. } => (key, EventKind::Put, value, None),
        Call::Delete { key } => (key, EventKind::Delete, &[], None),
        _ => return None,
    };
    Some(Write { op, key, kind, value, lease, revision })
}
