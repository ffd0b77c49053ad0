//! The probes, and how their results are judged: the server performs the I/O and hands the raw result to
//! `judge`, which says pass, warn or fail and writes the output text shown with the check.
//!
//! HTTP: 2xx passes, 429 warns, anything else (3xx included: redirects are not followed unless the definition
//! asks) fails; at most `output_max` bytes of the body are kept. TCP: connecting passes. gRPC:
//! `grpc.health.v1.Health/Check` answering `SERVING` passes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_OUTPUT_MAX, MAX_OUTPUT_MAX, MIN_INTERVAL, at_least};
use crate::error::{Error, Result, shown, truncate};
use crate::instance::validate_address;
use crate::time::{consul_string, format_duration};

/// A probe's verdict, before thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy.
    Pass,
    /// Degraded (HTTP 429).
    Warn,
    /// Failing.
    Fail,
}

/// How often a check is probed and how long one probe may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The time between probes, at least [`MIN_INTERVAL`](super::MIN_INTERVAL).
    #[serde(with = "consul_string")]
    pub interval: Duration,
    /// The longest a probe may take, more than zero and at most the interval.
    #[serde(with = "consul_string")]
    pub timeout: Duration,
}

impl Schedule {
    fn validate(&self) -> Result<()> {
        at_least("interval", self.interval, MIN_INTERVAL)?;
        if self.timeout.is_zero() || self.timeout > self.interval {
            let why = format!("must be more than 0 and at most the interval ({})", format_duration(self.interval));
            return Err(Error::Invalid { what: "timeout", value: format_duration(self.timeout), why });
        }
        Ok(())
    }
}

/// An HTTP check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// The URL, `http://` or `https://`.
    pub url: String,
    /// The method, upper case (default `GET`).
    pub method: String,
    /// Request headers, each name with its values.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// A request body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// When to probe.
    pub schedule: Schedule,
    /// Accept any server certificate.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// The name to verify the server certificate against, instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Follow redirects (at most 10). False unless the registration asks (see [`crate::consul`]): following
    /// them lets a registered URL reach places it does not name (CVE-2022-29153).
    #[serde(default)]
    pub follow_redirects: bool,
    /// How many bytes of the response body to read and keep as output.
    pub output_max: usize,
}

impl HttpCheck {
    /// A `GET` of `url` every `interval`, with the defaults for everything else.
    pub fn get(url: impl Into<String>, schedule: Schedule) -> HttpCheck {
        HttpCheck {
            url: url.into(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            body: None,
            schedule,
            tls_skip_verify: false,
            tls_server_name: None,
            follow_redirects: false,
            output_max: DEFAULT_OUTPUT_MAX,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        let head = self.url.get(..8).unwrap_or(&self.url).to_ascii_lowercase();
        let rest = match () {
            _ if head.starts_with("http://") => &self.url[7..],
            _ if head.starts_with("https://") => &self.url[8..],
            _ => return Err(invalid("HTTP check URL", &self.url, "must start with http:// or https://")),
        };
        if rest.is_empty() || rest.starts_with('/') || self.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("HTTP check URL", &self.url, "needs a host and no spaces"));
        }
        if self.method.is_empty() || self.method.len() > 16 || !self.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid("HTTP method", &self.method, "must be 1 to 16 upper-case letters"));
        }
        for (name, values) in &self.headers {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(invalid("HTTP header name", name, "must be an HTTP token"));
            }
            if let Some(v) = values.iter().find(|v| v.chars().any(|c| c.is_control() && c != '\t')) {
                return Err(invalid("HTTP header value", v, "control characters (line breaks) are not allowed"));
            }
        }
        if !(1..=MAX_OUTPUT_MAX).contains(&self.output_max) {
            let why = format!("must be 1 to {MAX_OUTPUT_MAX}");
            return Err(invalid("OutputMaxSize", &self.output_max.to_string(), &why));
        }
        self.schedule.validate()
    }

    /// Judges a response: its status code and the first bytes of its body (more than `output_max` are cut).
    pub fn judge(&self, status: u16, body: &[u8]) -> (Outcome, String) {
        let outcome = match status {
            200..=299 => Outcome::Pass,
            429 => Outcome::Warn,
            _ => Outcome::Fail,
        };
        let text = String::from_utf8_lossy(&body[..body.len().min(self.output_max)]).into_owned();
        let text = truncate(&text, self.output_max);
        (outcome, format!("HTTP {} {}: {status} Output: {text}", self.method, self.url))
    }

    /// Judges a request that got no response (refused, timed out, TLS failure): it fails.
    pub fn judge_error(&self, error: &str) -> (Outcome, String) {
        (Outcome::Fail, format!("HTTP {} {}: {}", self.method, self.url, truncate(error, self.output_max)))
    }
}

/// A TCP check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCheck {
    /// `host:port` (`[v6]:port` for IPv6).
    pub target: String,
    /// When to probe.
    pub schedule: Schedule,
}

impl TcpCheck {
    pub(super) fn validate(&self) -> Result<()> {
        split_host_port(&self.target)?;
        self.schedule.validate()
    }

    /// Judges a connection attempt: `Ok` if it connected, else the error.
    pub fn judge(&self, result: std::result::Result<(), &str>) -> (Outcome, String) {
        match result {
            Ok(()) => (Outcome::Pass, format!("TCP connect {}: Success", self.target)),
            Err(e) => (Outcome::Fail, format!("dial tcp {}: {}", self.target, truncate(e, DEFAULT_OUTPUT_MAX))),
        }
    }
}

/// The answer of `grpc.health.v1.Health/Check`, by its wire number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcServing {
    /// `UNKNOWN` (0).
    Unknown,
    /// `SERVING` (1).
    Serving,
    /// `NOT_SERVING` (2).
    NotServing,
    /// `SERVICE_UNKNOWN` (3), or any number not in the enum.
    ServiceUnknown,
}

impl GrpcServing {
    /// The status of a `HealthCheckResponse.status` number.
    pub fn from_wire(n: i32) -> GrpcServing {
        match n {
            0 => GrpcServing::Unknown,
            1 => GrpcServing::Serving,
            2 => GrpcServing::NotServing,
            _ => GrpcServing::ServiceUnknown,
        }
    }
}

/// A gRPC health check (`grpc.health.v1.Health/Check`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcCheck {
    /// `host:port`.
    pub target: String,
    /// The `service` field of the request; `None` asks about the server as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
    /// Accept any server certificate.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// When to probe.
    pub schedule: Schedule,
}

impl GrpcCheck {
    pub(super) fn validate(&self) -> Result<()> {
        split_host_port(&self.target)?;
        if self.service.as_ref().is_some_and(|s| s.is_empty() || s.chars().any(char::is_control)) {
            return Err(invalid("gRPC service name", self.service.as_deref().unwrap_or(""), "must be non-empty text"));
        }
        self.schedule.validate()
    }

    /// Judges an answer: `SERVING` passes, anything else fails.
    pub fn judge(&self, result: std::result::Result<GrpcServing, &str>) -> (Outcome, String) {
        let what =
            format!("gRPC check {}{}", self.target, self.service.as_ref().map_or(String::new(), |s| format!("/{s}")));
        match result {
            Ok(GrpcServing::Serving) => (Outcome::Pass, format!("{what}: success")),
            Ok(other) => (Outcome::Fail, format!("{what}: status {other:?}")),
            Err(e) => (Outcome::Fail, format!("{what}: {}", truncate(e, DEFAULT_OUTPUT_MAX))),
        }
    }
}

/// A TTL check: the instance reports before the TTL ends, else the check turns critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlCheck {
    /// How long a report holds.
    #[serde(with = "consul_string")]
    pub ttl: Duration,
}

/// Splits `host:port` (or `[v6]:port`), checking the host is an address or host name and the port 1 to 65535.
pub fn split_host_port(target: &str) -> Result<(&str, u16)> {
    let (host, port) = match target.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").ok_or_else(|| invalid("target", target, "[v6] needs ]:port"))?,
        None => target.rsplit_once(':').ok_or_else(|| invalid("target", target, "must be host:port"))?,
    };
    validate_address("target host", host)?;
    let port: i64 = port.parse().map_err(|_| invalid("target", target, "the port is not a number"))?;
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok((host, p)),
        _ => Err(Error::BadPort(port)),
    }
}

fn invalid(what: &'static str, value: &str, why: &str) -> Error {
    Error::Invalid { what, value: shown(value), why: why.into() }
}
