//! A TTL check's report on its way to the check's runner. Discovery only knows that reports have a route
//! ([`ReportRoute`], installed once at startup by the check runners, `check_runner::relay`); when the route does
//! not take a report, `Discovery::report_ttl` writes it through the log.

use std::future::Future;
use std::pin::Pin;

use meridian_registry::{CheckRecord, CheckRef, Instance, Outcome};

use crate::member::Member;

/// A TTL check's report, as an instance sent it to any member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtlReport {
    /// The check.
    pub check: CheckRef,
    /// Pass, warn or fail.
    pub outcome: Outcome,
    /// The note sent with it.
    pub output: String,
    /// The check's record as committed when the report arrived (read after a read barrier by the member that
    /// received it), with the revision that wrote it; `None` if the check had no record. The runner adopts it
    /// before judging the report if it is newer than what it knows: its catalog may not have seen a write by
    /// another member yet (an earlier report written through the log), and a report that looks like no change
    /// against a stale state would be acknowledged and lost.
    pub committed: Option<(CheckRecord, i64)>,
}

/// What a route's delivery comes to: `Err` says why the runner did not take the report.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where reports go before the log: the runner of the reported check.
pub trait ReportRoute: Send + Sync {
    /// Hands `report` of one of `instance`'s checks to the check's runner.
    fn deliver<'a>(&'a self, member: &'a Member, instance: &'a Instance, report: TtlReport) -> Delivery<'a>;
}
