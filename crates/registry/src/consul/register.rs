//! The bodies the agent API receives: `/v1/agent/service/register` ([`parse_register`]),
//! `/v1/agent/check/register` ([`parse_check_register`]) and `/v1/agent/check/update/<id>`
//! ([`parse_check_update`]).

use std::collections::BTreeMap;

use meridian_types::ZoneName;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::check::CheckBody;
use super::normalize::{CHECK, Field, SERVICE, normalize};
use super::{AgentContext, MAX_BODY_BYTES, ZONE_META_KEY};
use crate::check::{CheckDef, Outcome};
use crate::error::{Error, Result, shown};
use crate::instance::{Instance, Weights};
use crate::name::{InstanceId, ServiceName};
use crate::record::Registration;
use crate::status::Status;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WeightsBody {
    passing: Option<i64>,
    warning: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegisterBody {
    #[serde(rename = "ID")]
    id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    port: Option<i64>,
    meta: Option<BTreeMap<String, String>>,
    weights: Option<WeightsBody>,
    check: Option<CheckBody>,
    checks: Option<Vec<CheckBody>>,
}

/// Parses `body` as JSON, rewrites its keys to `schema`'s spelling and reads it as `T`.
fn read<T: DeserializeOwned>(body: &[u8], what: &'static str, schema: &'static [Field]) -> Result<T> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::BodyTooLarge { len: body.len(), max: MAX_BODY_BYTES });
    }
    let value: Value = serde_json::from_slice(body).map_err(|source| Error::BadJson { what, source })?;
    if !value.is_object() {
        return Err(Error::Invalid { what, value: shown(&value.to_string()), why: "must be a JSON object".into() });
    }
    serde_json::from_value(normalize(value, schema)?).map_err(|source| Error::BadJson { what, source })
}

fn weight(what: &'static str, n: Option<i64>, default: u16, min: i64) -> Result<u16> {
    let Some(n) = n else { return Ok(default) };
    match u16::try_from(n) {
        Ok(w) if n >= min => Ok(w),
        _ => Err(Error::Invalid { what, value: n.to_string(), why: format!("must be {min} to 65535") }),
    }
}

/// Reads a service registration sent to the agent API of the member described by `ctx`. Consul's defaults:
/// the id is the name; an empty address is the node's; weights are 1 and 1; a check's id is
/// `service:<id>` (`service:<id>:<n>` counting from 1 when there are several) and its name
/// `Service '<name>' check`. The meta key [`ZONE_META_KEY`] sets the instance's zone (else the agent's).
pub fn parse_register(body: &[u8], ctx: &AgentContext) -> Result<Registration> {
    let reg: RegisterBody = read(body, "service registration", SERVICE)?;
    let name = reg.name.as_deref().filter(|n| !n.is_empty()).ok_or(Error::Missing { what: "service name (Name)" })?;
    let service = ServiceName::new(name)?;
    let id = InstanceId::new(reg.id.as_deref().filter(|i| !i.is_empty()).unwrap_or(name))?;
    if let Some(kind) = reg.kind.as_deref().filter(|k| !k.is_empty() && *k != "typical") {
        let why = "only plain services can be registered (no proxies or gateways)".to_owned();
        return Err(Error::Invalid { what: "service Kind", value: shown(kind), why });
    }
    let port = reg.port.ok_or(Error::Missing { what: "port (Port)" })?;
    let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or(Error::BadPort(port))?;
    let address = match reg.address.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => a.to_owned(),
        None => ctx.node_address.clone(),
    };
    let meta = reg.meta.unwrap_or_default();
    let zone = match meta.get(ZONE_META_KEY) {
        Some(z) => Some(ZoneName(z.clone())),
        None => ctx.zone.clone(),
    };
    let w = reg.weights.unwrap_or_default();
    let weights = Weights {
        passing: weight("Weights.Passing", w.passing, 1, 1)?,
        warning: weight("Weights.Warning", w.warning, 1, 0)?,
    };
    let instance = Instance {
        service,
        id,
        node: ctx.node.clone(),
        node_address: ctx.node_address.clone(),
        address,
        port,
        tags: reg.tags.unwrap_or_default(),
        meta,
        dc: ctx.dc.clone(),
        zone,
        weights,
        lease: ctx.lease,
    };
    let bodies: Vec<(String, CheckBody)> = reg
        .check
        .map(|c| ("Check".to_owned(), c))
        .into_iter()
        .chain(reg.checks.unwrap_or_default().into_iter().enumerate().map(|(n, c)| (format!("Checks[{n}]"), c)))
        .collect();
    let several = bodies.len() > 1;
    let checks = bodies
        .into_iter()
        .enumerate()
        .map(|(n, (path, body))| {
            let default_id =
                if several { format!("service:{}:{}", instance.id, n + 1) } else { format!("service:{}", instance.id) };
            body.into_def(&default_id, &format!("Service '{name}' check")).map_err(|e| e.in_field(path))
        })
        .collect::<Result<Vec<CheckDef>>>()?;
    let registration = Registration { instance, checks };
    registration.validate()?;
    Ok(registration)
}

/// Reads the body of `/v1/agent/check/register`: the instance id it attaches to (`ServiceID`; `None` for a
/// check of the node itself, which the server may refuse) and the definition. `Name` is required; the id
/// defaults to it.
pub fn parse_check_register(body: &[u8]) -> Result<(Option<InstanceId>, CheckDef)> {
    let check: CheckBody = read(body, "check registration", CHECK)?;
    let name = check.name.clone().filter(|n| !n.is_empty()).ok_or(Error::Missing { what: "check name (Name)" })?;
    let service = check.service_id.clone().filter(|s| !s.is_empty()).map(InstanceId::new).transpose()?;
    Ok((service, check.into_def(&name, &name)?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateBody {
    status: Option<String>,
    output: Option<String>,
}

const UPDATE: &[Field] = &[("Status", super::normalize::Shape::Plain), ("Output", super::normalize::Shape::Plain)];

/// Reads the body of `/v1/agent/check/update/<id>` (`{"Status": "passing", "Output": "..."}`) as the
/// observation it reports.
pub fn parse_check_update(body: &[u8]) -> Result<(Outcome, String)> {
    let update: UpdateBody = read(body, "check update", UPDATE)?;
    let status = update.status.as_deref().ok_or(Error::Missing { what: "check status (Status)" })?;
    let outcome = match Status::parse(status)? {
        Status::Passing => Outcome::Pass,
        Status::Warning => Outcome::Warn,
        Status::Critical => Outcome::Fail,
    };
    Ok((outcome, update.output.unwrap_or_default()))
}
