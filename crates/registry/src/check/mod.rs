//! Check definitions: what a check runner probes ([`CheckKind`]: HTTP, TCP, gRPC health, or a TTL the instance
//! reports against), how often, and how many results in a row change its status ([`Thresholds`], Consul's).
//! There are no script checks: running commands named in an HTTP request is remote code execution, and Consul
//! disables them by default; an unknown or script type is refused by the Consul parser
//! ([`crate::consul`]) with an error naming it.
//!
//! Rules: an interval is at least [`MIN_INTERVAL`] (a shorter one is refused, not raised, so the client learns
//! it); the timeout defaults to [`DEFAULT_TIMEOUT`] or the interval if shorter, and an explicit one may not
//! exceed the interval; a TTL and `deregister_critical_service_after` are at least [`MIN_INTERVAL`] too.

mod probe;
mod thresholds;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use probe::{GrpcCheck, GrpcServing, HttpCheck, Outcome, Schedule, TcpCheck, TtlCheck, split_host_port};
pub use thresholds::{MAX_THRESHOLD, Thresholds};

use crate::error::{Error, Result};
use crate::name::CheckId;
use crate::status::Status;
use crate::time::{consul_string_opt, format_duration};

/// The shortest interval between probes, TTL or deregistration delay.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The timeout of a probe when none is given (Consul's), unless the interval is shorter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a probe's output (an HTTP body) is kept by default, as Consul's `OutputMaxSize`.
pub const DEFAULT_OUTPUT_MAX: usize = 4096;
/// The largest `OutputMaxSize` accepted.
pub const MAX_OUTPUT_MAX: usize = 64 * 1024;
/// The longest check name or notes, in bytes.
pub const MAX_CHECK_TEXT: usize = 1024;
/// The most checks one instance may have.
pub const MAX_CHECKS: usize = 32;

/// What a check probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CheckKind {
    /// An HTTP request; 2xx is passing, 429 warning, anything else critical.
    Http(HttpCheck),
    /// A TCP connection; connecting is passing.
    Tcp(TcpCheck),
    /// `grpc.health.v1.Health/Check`; `SERVING` is passing.
    Grpc(GrpcCheck),
    /// Nothing is probed: the instance reports pass, warn or fail itself before the TTL ends.
    Ttl(TtlCheck),
}

impl CheckKind {
    /// Consul's name for the type (`http`, `tcp`, `grpc`, `ttl`), its `Type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Grpc(_) => "grpc",
            CheckKind::Ttl(_) => "ttl",
        }
    }

    /// The probing schedule, for the kinds a runner probes (all but TTL).
    pub fn schedule(&self) -> Option<Schedule> {
        match self {
            CheckKind::Http(c) => Some(c.schedule),
            CheckKind::Tcp(c) => Some(c.schedule),
            CheckKind::Grpc(c) => Some(c.schedule),
            CheckKind::Ttl(_) => None,
        }
    }

    /// The TTL of a TTL check.
    pub fn ttl(&self) -> Option<Duration> {
        match self {
            CheckKind::Ttl(c) => Some(c.ttl),
            _ => None,
        }
    }
}

/// One check of an instance, as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Its id, unique among the instance's checks.
    pub id: CheckId,
    /// A human name (Consul's `Name`), never empty.
    pub name: String,
    /// Free text shown with the check (Consul's `Notes`).
    #[serde(default)]
    pub notes: String,
    /// What it probes.
    pub kind: CheckKind,
    /// The status it starts with: Consul's `Status`, critical when not given, so an instance takes no traffic
    /// until its check has passed once.
    pub initial: Status,
    /// How many results in a row change the status.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Deregister the instance once this check has been critical this long.
    #[serde(default, with = "consul_string_opt", skip_serializing_if = "Option::is_none")]
    pub deregister_critical_after: Option<Duration>,
}

impl CheckDef {
    /// Checks the rules of the module docs.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::Missing { what: "check name" });
        }
        for (what, text) in [("check name", &self.name), ("check notes", &self.notes)] {
            if text.len() > MAX_CHECK_TEXT {
                return Err(Error::TooLong { what, len: text.len(), max: MAX_CHECK_TEXT });
            }
        }
        match &self.kind {
            CheckKind::Http(c) => c.validate()?,
            CheckKind::Tcp(c) => c.validate()?,
            CheckKind::Grpc(c) => c.validate()?,
            CheckKind::Ttl(c) => at_least("TTL", c.ttl, MIN_INTERVAL)?,
        }
        self.thresholds.validate()?;
        if let Some(after) = self.deregister_critical_after {
            at_least("deregister_critical_service_after", after, MIN_INTERVAL)?;
        }
        Ok(())
    }
}

/// Refuses `value` below `min` for the field `what`.
pub(crate) fn at_least(what: &'static str, value: Duration, min: Duration) -> Result<()> {
    if value < min {
        return Err(Error::BelowMinimum { what, value: format_duration(value), min: format_duration(min) });
    }
    Ok(())
}

/// Checks a list of an instance's checks: each valid, at most [`MAX_CHECKS`], ids unique.
pub fn validate_checks(checks: &[CheckDef]) -> Result<()> {
    if checks.len() > MAX_CHECKS {
        return Err(Error::TooMany { what: "checks", count: checks.len(), max: MAX_CHECKS });
    }
    for (n, check) in checks.iter().enumerate() {
        check.validate().map_err(|e| e.in_field(format!("check {}", check.id)))?;
        if checks[..n].iter().any(|c| c.id == check.id) {
            return Err(Error::DuplicateCheck(check.id.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
