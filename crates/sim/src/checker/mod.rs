//! Checks of a recorded [`History`]: linearizability of the key-value operations (a Porcupine-style
//! Wing–Gong–Lowe search per key, with unknown outcomes), revision order, serializable reads, watch streams,
//! leases, permissions (the limited user of [`crate::auth_workload`]), datacenter verdicts, failover groups,
//! locks (the clients of [`crate::lock_workload`]), discovery answers against the committed registry (the clients of
//! [`crate::discovery_workload`]) and the final leader.

mod auth;
mod bitset;
mod cache;
mod discovery;
mod entries;
mod groups;
mod lease;
mod linearizable;
mod linearized;
mod liveness;
mod locks;
pub mod model;
mod options;
pub mod partition;
mod report;
mod revisions;
mod serializable;
mod verdicts;
mod watch;
mod wellformed;
pub mod wgl;
mod writes;

pub use auth::AuthViolation;
pub use discovery::{DiscoveryStats, DiscoveryViolation};
pub use groups::GroupViolation;
pub use lease::LeaseViolation;
pub use linearizable::{KeyFailure, Linearizability};
pub use liveness::LivenessViolation;
pub use locks::LockViolation;
pub use options::CheckOptions;
pub use report::{CheckResult, Report};
pub use revisions::RevisionViolation;
pub use serializable::SerializableViolation;
pub use verdicts::VerdictViolation;
pub use watch::WatchViolation;
pub use wellformed::MalformedOp;

use crate::history::History;

/// Runs every check on `history`.
pub fn check(history: &History, opts: &CheckOptions) -> Report {
    let writes = writes::Writes::of(history);
    let lin = linearizable::check(history, opts.max_steps_per_key);
    let (discovery, discovery_stats) = discovery::check(history);
    Report {
        linearizability: lin.result,
        linearizability_failures: lin.failures,
        unknown_keys: lin.unknown_keys,
        malformed: wellformed::check(history),
        revisions: revisions::check(history, &writes),
        serializable: serializable::check(history, &writes),
        watch: watch::check(history, &writes),
        lease: lease::check(history, &writes, opts.lease_skew_allowance),
        auth: auth::check(history),
        verdicts: verdicts::check(history, opts.check_liveness),
        groups: groups::check(history, opts.check_liveness),
        locks: locks::check(history),
        discovery,
        discovery_stats,
        liveness: if opts.check_liveness { liveness::check(history) } else { Vec::new() },
        ops_checked: lin.ops_checked,
        keys_checked: lin.keys_checked,
        serializable_checked: serializable::answered(history),
        watches_checked: history.watches.len(),
    }
}

/// Checks only the linearizability of the key-value operations.
pub fn check_linearizability(history: &History, max_steps_per_key: u64) -> Linearizability {
    linearizable::check(history, max_steps_per_key)
}
