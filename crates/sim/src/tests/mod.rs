//! Behaviour tests of the checkers over hand-written and generated histories.

mod auth;
mod brute_force;
mod discovery;
mod history;
mod lease;
mod linearizability;
mod liveness;
mod random;
mod report;
mod revisions;
mod serializable;
mod util;
mod watch;
