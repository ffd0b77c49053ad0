//! The call and return entries of the Wing–Gong–Lowe search as a doubly-linked list over arrays, with the
//! lift/unlift operations that take an operation out of the list and put it back.

use crate::history::Operation;

const HEAD: usize = 0;
const NONE: usize = usize::MAX;

/// Call and return entries as a doubly-linked list over arrays. Node 0 is the head sentinel and the last node
/// the tail sentinel; entry nodes sit between them in time order.
pub struct EntryList {
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
    /// The entries of `ops`, sorted by time with calls before returns at equal times. An operation without
    /// a known completion gets no return entry.
    pub fn new(ops: &[&Operation]) -> Self {
        // (time, is_return, operation index): sorting puts calls before returns at equal times.
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

    /// The first node still in the list (the tail if it is empty).
    pub fn first(&self) -> usize {
        self.next[HEAD]
    }

    /// The operation of an entry node.
    pub fn op(&self, node: usize) -> usize {
        self.op[node]
    }

    /// The node after `node`.
    pub fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    /// The operation of a call node; `None` for a return node or the tail.
    pub fn call_op(&self, node: usize) -> Option<usize> {
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
    pub fn lift(&mut self, call: usize) {
        self.unlink(call);
        if self.ret[call] != NONE {
            self.unlink(self.ret[call]);
        }
    }

    /// Undoes [`EntryList::lift`], relinking in the reverse order.
    pub fn unlift(&mut self, call: usize) {
        if self.ret[call] != NONE {
            self.relink(self.ret[call]);
        }
        self.relink(call);
    }

    /// The operations of the call nodes from the front of the list up to `stop`.
    /// The operation of a return node, `None` for the tail.
    pub fn return_op(&self, node: usize) -> Option<usize> {
        (node != self.tail && !self.is_call[node]).then(|| self.op[node])
    }

    pub fn calls_before(&self, stop: usize) -> Vec<usize> {
        let mut calls = Vec::new();
        let mut node = self.first();
        while node != stop && node != self.tail {
            if self.is_call[node] {
                calls.push(self.op[node]);
            }
            node = self.next[node];
        }
        calls
    }
}
