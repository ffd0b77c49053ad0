//! A Consul check definition (`Check`, `Checks[]`, or the body of `/v1/agent/check/register`) turned into a
//! [`CheckDef`]. Empty strings, empty lists and `null` count as absent, as Go's zero values do in Consul.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::check::{
    CheckDef, CheckKind, DEFAULT_OUTPUT_MAX, DEFAULT_TIMEOUT, GrpcCheck, HttpCheck, Schedule, TcpCheck, Thresholds,
    TtlCheck,
};
use crate::error::{Error, Result, shown};
use crate::name::CheckId;
use crate::status::Status;
use crate::time::parse_duration;

/// A check as Consul's JSON has it, keys already canonical.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CheckBody {
    #[serde(rename = "CheckID")]
    pub check_id: Option<String>,
    #[serde(rename = "ID")]
    pub id: Option<String>,
    pub name: Option<String>,
    pub notes: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "ServiceID")]
    pub service_id: Option<String>,
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub interval: Option<Value>,
    pub timeout: Option<Value>,
    #[serde(rename = "TTL")]
    pub ttl: Option<Value>,
    #[serde(rename = "HTTP")]
    pub http: Option<String>,
    pub method: Option<String>,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub body: Option<String>,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: Option<bool>,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: Option<String>,
    pub disable_redirects: Option<bool>,
    #[serde(rename = "TCP")]
    pub tcp: Option<String>,
    #[serde(rename = "GRPC")]
    pub grpc: Option<String>,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: Option<bool>,
    pub success_before_passing: Option<u32>,
    pub failures_before_warning: Option<u32>,
    pub failures_before_critical: Option<u32>,
    pub deregister_critical_service_after: Option<Value>,
    pub output_max_size: Option<u64>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// The check types we refuse, by the key that announces them.
const REFUSED: [(&str, &str); 10] = [
    ("Args", "script"),
    ("ScriptArgs", "script"),
    ("Script", "script"),
    ("Shell", "script"),
    ("DockerContainerID", "docker"),
    ("H2PING", "h2ping"),
    ("UDP", "udp"),
    ("OSService", "os_service"),
    ("AliasNode", "alias"),
    ("AliasService", "alias"),
];

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

fn text(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A Consul duration field: a string (`"10s"`) or a number of nanoseconds (Go's `time.Duration` in JSON).
fn duration(what: &'static str, v: &Option<Value>) -> Result<Option<Duration>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => parse_duration(s).map(Some).map_err(|e| e.in_field(what)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(nanos) => Ok(Some(Duration::from_nanos(nanos))),
            None => Err(Error::Invalid { what, value: n.to_string(), why: "must be a duration".into() }),
        },
        Some(other) => Err(Error::Invalid { what, value: shown(&other.to_string()), why: "must be a duration".into() }),
    }
}

impl CheckBody {
    /// The one type the body names, or why it names none, several, or a refused one.
    fn kind_name(&self) -> Result<&'static str> {
        if let Some((_, kind)) = REFUSED.iter().find(|(key, _)| self.rest.get(*key).is_some_and(present)) {
            return Err(Error::UnsupportedCheck { kind: (*kind).to_owned() });
        }
        let given = [
            ("http", text(&self.http).is_some()),
            ("tcp", text(&self.tcp).is_some()),
            ("grpc", text(&self.grpc).is_some()),
            ("ttl", self.ttl.as_ref().is_some_and(present)),
        ];
        let kinds: Vec<&'static str> = given.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect();
        let declared = text(&self.kind).map(str::to_ascii_lowercase);
        if let Some(t) = &declared
            && !["http", "tcp", "grpc", "ttl"].contains(&t.as_str())
        {
            return Err(Error::UnsupportedCheck { kind: shown(t) });
        }
        match (kinds.as_slice(), declared) {
            ([], Some(t)) => Err(Error::Missing { what: field_of(&t) }),
            ([], None) => Err(Error::NoCheckType),
            ([one], Some(t)) if *one != t => {
                let why = format!("the definition is a {one} check");
                Err(Error::Invalid { what: "check Type", value: t, why })
            }
            ([one], _) => Ok(one),
            (many, _) => Err(Error::SeveralCheckTypes { kinds: many.join(", ") }),
        }
    }

    fn schedule(&self) -> Result<Schedule> {
        let interval = duration("Interval", &self.interval)?.ok_or(Error::Missing { what: "Interval" })?;
        let timeout = duration("Timeout", &self.timeout)?.unwrap_or(DEFAULT_TIMEOUT.min(interval));
        Ok(Schedule { interval, timeout })
    }

    /// The definition, with `default_id` and `default_name` where the body gives none.
    pub(crate) fn into_def(self, default_id: &str, default_name: &str) -> Result<CheckDef> {
        let kind = match self.kind_name()? {
            "http" => CheckKind::Http(HttpCheck {
                url: self.http.clone().unwrap_or_default(),
                method: text(&self.method).unwrap_or("GET").to_ascii_uppercase(),
                headers: self.header.clone().unwrap_or_default(),
                body: text(&self.body).map(str::to_owned),
                schedule: self.schedule()?,
                tls_skip_verify: self.tls_skip_verify.unwrap_or(false),
                tls_server_name: text(&self.tls_server_name).map(str::to_owned),
                // Only an explicit `DisableRedirects: false` asks for redirects to be followed.
                follow_redirects: self.disable_redirects == Some(false),
                output_max: self.output_max()?,
            }),
            "tcp" => {
                CheckKind::Tcp(TcpCheck { target: self.tcp.clone().unwrap_or_default(), schedule: self.schedule()? })
            }
            "grpc" => {
                let spec = self.grpc.clone().unwrap_or_default();
                let (target, service) = match spec.split_once('/') {
                    Some((t, s)) => (t.to_owned(), Some(s.to_owned())),
                    None => (spec, None),
                };
                CheckKind::Grpc(GrpcCheck {
                    target,
                    service,
                    tls: self.grpc_use_tls.unwrap_or(false),
                    tls_skip_verify: self.tls_skip_verify.unwrap_or(false),
                    schedule: self.schedule()?,
                })
            }
            _ => CheckKind::Ttl(TtlCheck { ttl: duration("TTL", &self.ttl)?.unwrap_or_default() }),
        };
        let def = CheckDef {
            id: CheckId::new(text(&self.check_id).or(text(&self.id)).unwrap_or(default_id))?,
            name: text(&self.name).unwrap_or(default_name).to_owned(),
            notes: self.notes.clone().unwrap_or_default(),
            kind,
            initial: text(&self.status).map(Status::parse).transpose()?.unwrap_or(Status::Critical),
            thresholds: Thresholds::from_consul(
                self.success_before_passing.unwrap_or(0),
                self.failures_before_warning.filter(|n| *n > 0),
                self.failures_before_critical.unwrap_or(0),
            ),
            deregister_critical_after: duration(
                "DeregisterCriticalServiceAfter",
                &self.deregister_critical_service_after,
            )?,
        };
        def.validate()?;
        Ok(def)
    }

    fn output_max(&self) -> Result<usize> {
        match self.output_max_size {
            None | Some(0) => Ok(DEFAULT_OUTPUT_MAX),
            Some(n) => usize::try_from(n).map_err(|_| Error::Invalid {
                what: "OutputMaxSize",
                value: n.to_string(),
                why: "too large".into(),
            }),
        }
    }
}

fn field_of(kind: &str) -> &'static str {
    match kind {
        "http" => "HTTP",
        "tcp" => "TCP",
        "grpc" => "GRPC",
        _ => "TTL",
    }
}
