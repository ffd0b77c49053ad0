//! A TTL check's report on its way to the check's runner. Discovery only knows that reports have a route
//! ([`ReportRoute`], installed once at startup by the check runners, `check_runner::relay`); when the route does
//! not take a report, `Discovery::report_ttl` writes it through the log.

use std::future::Future;
use std::pin::Pin;

use meridian_registry::{CheckRef, Instance, Outcome};

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
}

/// What a route's delivery comes to: `Err` says why the runner did not take the report.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where reports go before the log: the runner of the reported check.
pub trait ReportRoute: Send + Sync {
    /// Hands `report` of one of `instance`'s checks to the check's runner.
    fn deliver<'a>(&'a self, member: &'a Member, instance: &'a Instance, report: TtlReport) -> Delivery<'a>;
}
