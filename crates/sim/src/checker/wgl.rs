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

use super::cache::Cache;
use super::entries::EntryList;
use super::linearized::Linearized;
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
            deepest = Some(explain(&list, entry, &stack, &state));
        }
        let Some((call, previous)) = stack.pop() else {
            let deepest = deepest.unwrap_or_else(|| explain(&list, entry, &stack, &state));
            return SearchResult::NotLinearizable(deepest);
        };
        state = previous;
        linearized.clear(list.op(call));
        list.unlift(call);
        entry = list.next(call);
    }
    SearchResult::Linearizable
}

/// Describes the configuration at a return node the search could not get past.
fn explain<S: Clone>(list: &EntryList, stuck_at: usize, stack: &[(usize, S)], state: &S) -> Deepest<S> {
    Deepest {
        prefix: stack.iter().map(|(call, _)| list.op(*call)).collect(),
        state: state.clone(),
        blocked: list.return_op(stuck_at),
        candidates: list.calls_before(stuck_at),
    }
}
