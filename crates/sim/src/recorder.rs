//! Recording a history as simulated clients run: every operation gets an id and its invocation
//! time when it starts, and its completion time and outcome when it ends (or stays unknown).
//! Times are simulated nanoseconds since the simulation started.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth_ops::{AuthOp, AuthOutcome, AuthRecord};
use crate::discovery_record::{DiscoveryRecord, RegistryWrite, WriteOutcome};
use crate::history::{Call, History, LockCall, LockOp, LockOutcome, LockRecord, Operation, Outcome, WatchLog};

/// Simulated time now, in nanoseconds.
pub fn now_ns() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The history under construction, shared by every client of a run.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<History>>,
}

/// A started operation; finish it with [`Recorder::complete`].
#[derive(Debug)]
pub struct Pending {
    index: usize,
}

impl Recorder {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the invocation of `call` by `client` now.
    pub fn invoke(&self, client: u32, call: Call) -> Pending {
        let mut h = self.inner.lock();
        let index = h.ops.len();
        h.ops.push(Operation {
            id: index as u64,
            client,
            invoke: now_ns(),
            complete: None,
            call,
            outcome: Outcome::Unknown,
        });
        Pending { index }
    }

    /// Records how `op` ended. An `Unknown` outcome keeps no completion time: the operation may
    /// take effect at any later moment.
    pub fn complete(&self, op: Pending, outcome: Outcome) {
        let mut h = self.inner.lock();
        let rec = &mut h.ops[op.index];
        rec.complete = (!matches!(outcome, Outcome::Unknown)).then(now_ns);
        rec.outcome = outcome;
    }

    /// Adds a watch stream's log and returns its index.
    pub fn add_watch(&self, log: WatchLog) -> usize {
        let mut h = self.inner.lock();
        h.watches.push(log);
        h.watches.len() - 1
    }

    /// Changes the watch log at `index`.
    pub fn with_watch<T>(&self, index: usize, f: impl FnOnce(&mut WatchLog) -> T) -> T {
        f(&mut self.inner.lock().watches[index])
    }

    /// Adds the log of a watch of the verdicts and returns its index.
    pub fn add_verdict_watch(&self, log: WatchLog) -> usize {
        let mut h = self.inner.lock();
        h.verdict_watches.push(log);
        h.verdict_watches.len() - 1
    }

    /// Changes the verdict watch log at `index`.
    pub fn with_verdict_watch<T>(&self, index: usize, f: impl FnOnce(&mut WatchLog) -> T) -> T {
        f(&mut self.inner.lock().verdict_watches[index])
    }

    /// Changes the whole history (the runner records the final leader).
    pub fn with_history<T>(&self, f: impl FnOnce(&mut History) -> T) -> T {
        f(&mut self.inner.lock())
    }

    /// Changes the authentication record (created empty on first use).
    pub fn with_auth<T>(&self, f: impl FnOnce(&mut AuthRecord) -> T) -> T {
        f(self.inner.lock().auth.get_or_insert_with(AuthRecord::default))
    }

    /// Records the invocation of a limited user's operation now (its id, time and outcome are filled in).
    pub fn invoke_auth(&self, mut op: AuthOp) -> usize {
        self.with_auth(|a| {
            op.id = a.ops.len() as u64;
            op.invoke = now_ns();
            op.complete = None;
            op.outcome = AuthOutcome::Unknown;
            a.ops.push(op);
            a.ops.len() - 1
        })
    }

    /// Records how the limited user's operation `index` ended; an unknown outcome keeps no completion time.
    pub fn complete_auth(&self, index: usize, outcome: AuthOutcome) {
        self.with_auth(|a| {
            let op = &mut a.ops[index];
            op.complete = (!matches!(outcome, AuthOutcome::Unknown)).then(now_ns);
            op.outcome = outcome;
        });
    }

    /// Changes the lock record (created empty on first use).
    pub fn with_locks<T>(&self, f: impl FnOnce(&mut LockRecord) -> T) -> T {
        f(self.inner.lock().locks.get_or_insert_with(LockRecord::default))
    }

    /// Records the invocation of a lock operation now and returns its index.
    pub fn invoke_lock(&self, client: u32, call: LockCall) -> usize {
        self.with_locks(|l| {
            let id = l.ops.len();
            l.ops.push(LockOp {
                id: id as u64,
                client,
                invoke: now_ns(),
                complete: None,
                call,
                outcome: LockOutcome::Unknown,
            });
            id
        })
    }

    /// Records how lock operation `index` ended; an unknown outcome keeps no completion time.
    pub fn complete_lock(&self, index: usize, outcome: LockOutcome) {
        self.with_locks(|l| {
            let op = &mut l.ops[index];
            op.complete = (!matches!(outcome, LockOutcome::Unknown)).then(now_ns);
            op.outcome = outcome;
        });
    }

    /// Adds the log of a watch of the lock's keys and returns its index.
    pub fn add_lock_watch(&self, log: WatchLog) -> usize {
        self.with_locks(|l| {
            l.watches.push(log);
            l.watches.len() - 1
        })
    }

    /// Changes the lock watch log at `index`.
    pub fn with_lock_watch<T>(&self, index: usize, f: impl FnOnce(&mut WatchLog) -> T) -> T {
        self.with_locks(|l| f(&mut l.watches[index]))
    }

    /// Changes the discovery record (created empty on first use).
    pub fn with_discovery<T>(&self, f: impl FnOnce(&mut DiscoveryRecord) -> T) -> T {
        f(self.inner.lock().discovery.get_or_insert_with(DiscoveryRecord::default))
    }

    /// Records the invocation of a registry write now (its id and time are filled in) and returns its index.
    pub fn invoke_registry(&self, mut write: RegistryWrite) -> usize {
        self.with_discovery(|d| {
            write.id = d.writes.len() as u64;
            write.invoke = now_ns();
            write.complete = None;
            d.writes.push(write);
            d.writes.len() - 1
        })
    }

    /// Records how registry write `index` ended; an unknown outcome keeps no completion time.
    pub fn complete_registry(&self, index: usize, outcome: WriteOutcome) {
        self.with_discovery(|d| {
            let w = &mut d.writes[index];
            w.complete = (!matches!(outcome, WriteOutcome::Unknown)).then(now_ns);
            w.outcome = outcome;
        });
    }

    /// A copy of the history so far.
    pub fn snapshot(&self) -> History {
        self.inner.lock().clone()
    }
}
