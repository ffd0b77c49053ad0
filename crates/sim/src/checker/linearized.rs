//! The set of operations the search has linearized so far, kept as two bitsets: operations with a known
//! completion (all must be linearized) and operations with unknown outcome (each may be, or not), which the
//! cache treats differently.

use std::hash::Hash;

use super::bitset::Bitset;
use super::cache::Cache;
use crate::history::Operation;

/// Where an operation's bit lives: operations with a known completion and those without are tracked apart.
#[derive(Clone, Copy)]
enum Slot {
    Known(usize),
    Unknown(usize),
}

/// The operations linearized so far.
pub struct Linearized {
    slots: Vec<Slot>,
    known: Bitset,
    unknown: Bitset,
    /// Operations with a known completion not yet linearized: the search succeeds when none are left.
    pub known_remaining: usize,
}

impl Linearized {
    /// Nothing linearized yet among `ops`.
    pub fn new(ops: &[&Operation]) -> Self {
        let (mut k, mut u) = (0, 0);
        let mut slots = Vec::with_capacity(ops.len());
        for op in ops {
            if op.known_completion().is_some() {
                slots.push(Slot::Known(k));
                k += 1;
            } else {
                slots.push(Slot::Unknown(u));
                u += 1;
            }
        }
        Linearized { slots, known: Bitset::new(k), unknown: Bitset::new(u), known_remaining: k }
    }

    /// Records the configuration reached by linearizing `i` into `state`; false if it was explored already.
    pub fn is_new_with<S: Eq + Hash>(&self, i: usize, state: S, cache: &mut Cache<S>) -> bool {
        match self.slots[i] {
            Slot::Known(b) => cache.insert(self.known.with(b), &self.unknown, state),
            Slot::Unknown(b) => cache.insert(self.known.clone(), &self.unknown.with(b), state),
        }
    }

    /// Marks operation `i` linearized.
    pub fn set(&mut self, i: usize) {
        match self.slots[i] {
            Slot::Known(b) => {
                debug_assert!(!self.known.contains(b), "an operation is linearized at most once");
                self.known.set(b);
                self.known_remaining -= 1;
            }
            Slot::Unknown(b) => self.unknown.set(b),
        }
    }

    /// Undoes [`Linearized::set`].
    pub fn clear(&mut self, i: usize) {
        match self.slots[i] {
            Slot::Known(b) => {
                self.known.clear(b);
                self.known_remaining += 1;
            }
            Slot::Unknown(b) => self.unknown.clear(b),
        }
    }
}
