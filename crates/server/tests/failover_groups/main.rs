//! Failover groups on a real member: the leader's switches on verdicts (tokens that only grow), hooks called once
//! per token and retried with every attempt audited, and the admin API's manual switches and definitions with
//! their errors. One voter in dc-a; dc-b and dc-c hold learners that never run, so the group's datacenters are
//! the topology's while one process commits alone. Verdicts are written as the server writes them, with the
//! server's own (caller-less) commands.

mod admin;
mod harness;
mod hooks;
mod switching;
