//! The Wing–Gong–Lowe linearizability search, in the form Porcupine uses.
//!
//! Every operation becomes a call entry at its invocation time and a return entry at its completion time,
//! sorted by time with calls before returns at equal times (touching operations count as concurrent). The
//! entries form a doubly-linked list. The search walks it from the front: at a call it tries to linearize
//! that operation next (the model accepts the outcome), and if so *lifts* the call and its return out of the
//! list, pushes the choice on a stack and restarts from the front; at a return it has failed to linearize that
//! operation before it completed, so it pops the last choice, *unlifts* it and tries the next candidate. A
//! cache of (linearized set, model state) pairs prunes configurations already explored (see the `cache` module).
//!
//! An operation with unknown outcome has no return entry (it returns at +infinity): it may be linearized at
//! any point after its call, or never, so the search succeeds once every operation with a known completion
//! is linearized.

use super::bitset::Bitset;
use super::cache::Cache;
use super::model::Model;
use crate::history::Operation;

/// The result of searching one sub-history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchResult<S> {
    /// A linearization exists.
    Linearizable,
    /// The step limit ran out before the search finished.
    StepLimit {
        /// Steps taken.
        steps: u64,
    },
    /// No linearization exists; the deepest point the search reached explains why.
    NotLinearizable(Deepest<S>),
}

/// The longest linearizable prefix the search found, and where it got stuck after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deepest<S> {
    /// Indices (into the searched slice) of the prefix's operations, in linearization order.
    pub prefix: Vec<usize>,
    /// The model state after the prefix.
    pub state: S,
    /// The operation that completed before any of the candidates could be linearized.
    pub blocked: Option<usize>,
    /// Operations invoked before `blocked` completed and not in the prefix: none could go next.
    pub candidates: Vec<usize>,
}

/// Searches for a linearization of `ops` under `model`, giving up after `max_steps` steps.
pub fn search<M: Model>(model: &M, ops: &[&Operation], max_steps: u64) -> SearchResult<M::State> {
    let mut list = EntryList::new(ops);
    let mut state = model.init();
    let mut linearized = Linearized::new(ops);
    let mut cache = Cache::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut deepest: Option<Deepest<M::State>> = None;
    let mut entry = list.first();
    let mut steps = 0u64;
    while linearized.known_remaining > 0 {
        steps += 1;
        if steps > max_steps {
            return SearchResult::StepLimit { steps: max_steps };
        }
        if let Some(i) = list.call_op(entry) {
            if let Some(next) = model.step(&state, ops[i])
                && linearized.is_new_with(i, next.clone(), &mut cache)
            {
                linearized.set(i);
                stack.push((entry, std::mem::replace(&mut state, next)));
                list.lift(entry);
                entry = list.first();
                continue;
            }
            entry = list.next(entry);
            continue;
        }
        // A return: that operation had to be linearized before here. Backtrack.
        if deepest.as_ref().is_none_or(|d| stack.len() > d.prefix.len()) {
            deepest = Some(list.explain(entry, &stack, &state));
        }
        let Some((call, previous)) = stack.pop() else {
            let deepest = deepest.unwrap_or_else(|| list.explain(entry, &stack, &state));
            return SearchResult::NotLinearizable(deepest);
        };
        state = previous;
        linearized.clear(list.op[call]);
        list.unlift(call);
        entry = list.next(call);
    }
    SearchResult::Linearizable
}

/// Where an operation's bit lives: operations with a known completion and those without are tracked apart.
#[derive(Clone, Copy)]
enum Slot {
    Known(usize),
    Unknown(usize),
}

/// The operations linearized so far.
struct Linearized {
    slots: Vec<Slot>,
    known: Bitset,
    unknown: Bitset,
    /// Operations with a known completion not yet linearized: the search succeeds when none are left.
    known_remaining: usize,
}

impl Linearized {
    fn new(ops: &[&Operation]) -> Self {
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
    fn is_new_with<S: Eq + std::hash::Hash>(&self, i: usize, state: S, cache: &mut Cache<S>) -> bool {
        match self.slots[i] {
            Slot::Known(b) => cache.insert(self.known.with(b), &self.unknown, state),
            Slot::Unknown(b) => cache.insert(self.known.clone(), &self.unknown.with(b), state),
        }
    }

    fn set(&mut self, i: usize) {
        match self.slots[i] {
            Slot::Known(b) => {
                debug_assert!(!self.known.contains(b), "an operation is linearized at most once");
                self.known.set(b);
                self.known_remaining -= 1;
            }
            Slot::Unknown(b) => self.unknown.set(b),
        }
    }

    fn clear(&mut self, i: usize) {
        match self.slots[i] {
            Slot::Known(b) => {
                self.known.clear(b);
                self.known_remaining += 1;
            }
            Slot::Unknown(b) => self.unknown.clear(b),
        }
    }
}

const HEAD: usize = 0;
const NONE: usize = usize::MAX;

/// Call and return entries as a doubly-linked list over arrays. Node 0 is the head sentinel and the last node
/// the tail sentinel; entry nodes sit between them in time order.
struct EntryList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The operation of each node (unused for sentinels).
    op: Vec<usize>,
    /// For a call node, its return node, or `NONE` for an unknown outcome; `NONE` on return nodes.
    ret: Vec<usize>,
    is_call: Vec<bool>,
    tail: usize,
}

impl EntryList {
    fn new(ops: &[&Operation]) -> Self {
        // (time, returns after calls, operation index, is_call)
        let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.invoke, false, i));
            if let Some(c) = op.known_completion() {
                // A malformed completion before the invocation (reported elsewhere) must not precede the call.
                entries.push((c.max(op.invoke), true, i));
            }
        }
        entries.sort_unstable();
        let tail = entries.len() + 1;
        let mut list = EntryList {
            next: (1..=tail).chain([NONE]).collect(),
            prev: [NONE].into_iter().chain(0..tail).collect(),
            op: vec![NONE; tail + 1],
            ret: vec![NONE; tail + 1],
            is_call: vec![false; tail + 1],
            tail,
        };
        let mut call_node = vec![NONE; ops.len()];
        for (n, &(_, is_return, i)) in entries.iter().enumerate() {
            let node = n + 1;
            list.op[node] = i;
            if is_return {
                list.ret[call_node[i]] = node;
            } else {
                list.is_call[node] = true;
                call_node[i] = node;
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.next[HEAD]
    }

    fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    /// The operation of a call node; `None` for a return node or the tail.
    fn call_op(&self, node: usize) -> Option<usize> {
        self.is_call[node].then(|| self.op[node])
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        self.prev[n] = node;
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if self.ret[call] != NONE {
            self.unlink(self.ret[call]);
        }
    }

    /// Undoes [`EntryList::lift`], relinking in the reverse order.
    fn unlift(&mut self, call: usize) {
        if self.ret[call] != NONE {
            self.relink(self.ret[call]);
        }
        self.relink(call);
    }

    /// Describes the configuration at a return node the search could not get past.
    fn explain<S: Clone>(&self, stuck_at: usize, stack: &[(usize, S)], state: &S) -> Deepest<S> {
        let mut candidates = Vec::new();
        let mut node = self.first();
        while node != stuck_at && node != self.tail {
            if self.is_call[node] {
                candidates.push(self.op[node]);
            }
            node = self.next[node];
        }
        let blocked = (stuck_at != self.tail).then(|| self.op[stuck_at]);
        Deepest {
            prefix: stack.iter().map(|(call, _)| self.op[*call]).collect(),
            state: state.clone(),
            blocked,
            candidates,
        }
    }
}
