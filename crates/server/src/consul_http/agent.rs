//! `/v1/agent/*`: the member acting as the Consul agent of the clients that talk to it. Registrations taken
//! here get the member's name as their node; ids are looked up among this node's instances first, then, if
//! exactly one matches, anywhere (a client that moved to another member can still deregister or report).
//! Check reports and deregistrations answer to GET as well as PUT, as python3-consul sends them.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::consul::{
    AgentContext, MAX_BODY_BYTES, agent_check, agent_service, parse_check_register, parse_check_update, parse_register,
};
use meridian_registry::{CheckRef, InstanceRef, Outcome, Registration, Status};
use serde_json::json;

use meridian_types::{EtcdError, LeaseId};

use super::blocking::settle;
use super::reply::{self, Answer, done};
use super::{Api, access, begin, read_body};
use crate::discovery::DiscoveryError;
use crate::discovery::catalog::Catalog;

/// The instance with id `id`: this node's, else the only one anywhere.
fn find_instance(catalog: &Catalog, node: &str, id: &str) -> Option<InstanceRef> {
    let matching: Vec<InstanceRef> =
        catalog.instances().map(|s| s.registration.instance.reference()).filter(|r| r.id.as_str() == id).collect();
    matching.iter().find(|r| r.node.as_str() == node).cloned().or_else(|| match matching.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// The check with id `id`: one of this node's instances', else the only one anywhere.
fn find_check(catalog: &Catalog, node: &str, id: &str) -> Option<CheckRef> {
    let matching: Vec<CheckRef> = catalog
        .instances()
        .flat_map(|s| s.registration.checks.iter().map(|d| s.registration.check_ref(&d.id)))
        .filter(|c| c.check.as_str() == id)
        .collect();
    matching.iter().find(|c| c.instance.node.as_str() == node).cloned().or_else(|| match matching.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// Writes `reg` (the caller must be allowed to write its service) and waits until this member's catalog shows it.
async fn store(api: &Api, reg: &Registration) -> Answer {
    let revision = api.discovery().register(reg).await.map_err(|e| reply::discovery(&e))?;
    settle(api, |c| c.index() >= revision).await;
    Ok(reply::empty())
}

/// `PUT /v1/agent/service/register` (`?replace-existing-checks` is accepted: a registration always replaces
/// the instance's checks). Meridian's `?lease=<id>` (an etcd lease id, see [`lease_param`]) binds the
/// registration and its check states to that lease, so the instance goes when the lease expires (its agent died)
/// or is revoked.
pub async fn register(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let lease = lease_param(call.params.non_empty("lease")).map_err(|m| reply::bad_request(&m))?;
            let body = read_body(call.body, MAX_BODY_BYTES + 1).await?;
            let agent = AgentContext { lease, ..api.discovery().agent().clone() };
            let reg = parse_register(&body, &agent).map_err(|e| reply::bad_request(&e.message()))?;
            access::service(api.member(), &call.who, &reg.instance.service, PermKind::Write)?;
            match api.discovery().register(&reg).await {
                Err(DiscoveryError::Store(EtcdError::LeaseNotFound)) => Err(reply::bad_request(&format!(
                    "lease {:x} not found: grant it first (etcdctl lease grant)",
                    lease.map_or(0, |l| l.0)
                ))
                .into()),
                Err(e) => Err(reply::discovery(&e).into()),
                Ok(revision) => {
                    settle(&api, |c| c.index() >= revision).await;
                    Ok(reply::empty())
                }
            }
        }
        .await,
    )
}

/// The `?lease=` of a registration: an etcd lease id in hex, as `etcdctl lease grant` prints it (`694d7a2c1b`,
/// with or without `0x`). Absent: not bound to a lease.
pub fn lease_param(text: Option<&str>) -> Result<Option<LeaseId>, String> {
    let Some(text) = text else { return Ok(None) };
    let digits = text.strip_prefix("0x").unwrap_or(text);
    match i64::from_str_radix(digits, 16) {
        Ok(id) if id > 0 => Ok(Some(LeaseId(id))),
        _ => Err(format!("lease {text:?}: expected an etcd lease id in hex, as etcdctl lease grant prints it")),
    }
}

/// `PUT|GET /v1/agent/service/deregister/<id>`.
pub async fn deregister(State(api): State<Api>, Path(id): Path<String>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let node = api.discovery().agent().node.to_string();
            let found = find_instance(&api.live().read(), &node, &id);
            let r = found.ok_or_else(|| reply::not_found(&reply::unknown_service(&id)))?;
            access::service(api.member(), &call.who, &r.service, PermKind::Write)?;
            api.discovery().deregister(&r).await.map_err(|e| reply::discovery(&e))?;
            settle(&api, |c| c.instance(&r).is_none()).await;
            Ok(reply::empty())
        }
        .await,
    )
}

/// Reports `outcome` with `output` for the TTL check `id` on behalf of `call`'s caller.
async fn report(
    api: &Api,
    who: &meridian_proto::meridianpb::RequestAuth,
    id: &str,
    outcome: Outcome,
    output: String,
) -> Answer {
    let node = api.discovery().agent().node.to_string();
    let found = find_check(&api.live().read(), &node, id);
    let check = found.ok_or_else(|| reply::not_found(&reply::unknown_check(id)))?;
    access::service(api.member(), who, &check.instance.service, PermKind::Write)?;
    api.discovery().report_ttl(&check, outcome, output).await.map_err(|e| reply::discovery(&e))?;
    let status = match outcome {
        Outcome::Pass => Status::Passing,
        Outcome::Warn => Status::Warning,
        Outcome::Fail => Status::Critical,
    };
    settle(api, |c| c.check(&check.instance, &check.check).is_some_and(|(r, _)| r.status == status)).await;
    Ok(reply::empty())
}

/// `PUT|GET /v1/agent/check/{pass,warn,fail}/<id>?note=`.
pub async fn check_report(api: Api, outcome: Outcome, id: String, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let note = call.params.get("note").unwrap_or_default().to_owned();
            report(&api, &call.who, &id, outcome, note).await
        }
        .await,
    )
}

/// `PUT /v1/agent/check/update/<id>` with `{"Status": ..., "Output": ...}`.
pub async fn check_update(State(api): State<Api>, Path(id): Path<String>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let body = read_body(call.body, MAX_BODY_BYTES + 1).await?;
            let (outcome, output) = parse_check_update(&body).map_err(|e| reply::bad_request(&e.message()))?;
            report(&api, &call.who, &id, outcome, output).await
        }
        .await,
    )
}

/// `PUT /v1/agent/check/register`: adds a check to an instance of this node (or replaces the one with its id).
/// The instance is written again, so its other checks start over at their initial status. Checks of the node
/// itself (no `ServiceID`) are not kept by Meridian.
pub async fn check_register(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let body = read_body(call.body, MAX_BODY_BYTES + 1).await?;
            let (instance, def) = parse_check_register(&body).map_err(|e| reply::bad_request(&e.message()))?;
            let instance = instance.ok_or_else(|| {
                reply::bad_request("ServiceID is required: Meridian keeps checks of service instances, not of nodes")
            })?;
            let node = api.discovery().agent().node.to_string();
            let reg = {
                let catalog = api.live().read();
                let r = find_instance(&catalog, &node, instance.as_str())
                    .ok_or_else(|| reply::not_found(&reply::unknown_service(instance.as_str())))?;
                catalog.instance(&r).map(|s| s.registration.clone())
            };
            let mut reg = reg.ok_or_else(|| reply::not_found(&reply::unknown_service(instance.as_str())))?;
            access::service(api.member(), &call.who, &reg.instance.service, PermKind::Write)?;
            reg.checks.retain(|c| c.id != def.id);
            reg.checks.push(def);
            store(&api, &reg).await
        }
        .await,
    )
}

/// `PUT|GET /v1/agent/check/deregister/<id>`: removes a check from its instance (written again, so its other
/// checks start over).
pub async fn check_deregister(State(api): State<Api>, Path(id): Path<String>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let node = api.discovery().agent().node.to_string();
            let reg = {
                let catalog = api.live().read();
                let check =
                    find_check(&catalog, &node, &id).ok_or_else(|| reply::not_found(&reply::unknown_check(&id)))?;
                catalog.instance(&check.instance).map(|s| s.registration.clone())
            };
            let mut reg = reg.ok_or_else(|| reply::not_found(&reply::unknown_check(&id)))?;
            access::service(api.member(), &call.who, &reg.instance.service, PermKind::Write)?;
            reg.checks.retain(|c| c.id.as_str() != id);
            store(&api, &reg).await
        }
        .await,
    )
}

/// `GET /v1/agent/services`: this node's instances by id, those of services the caller may read.
pub async fn services(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let node = api.discovery().agent().node.clone();
            let member = api.member();
            let catalog = api.live().read();
            let out: BTreeMap<String, _> = catalog
                .instances()
                .map(|s| &s.registration.instance)
                .filter(|i| i.node == node && access::service(member, &call.who, &i.service, PermKind::Read).is_ok())
                .map(|i| (i.id.to_string(), agent_service(i)))
                .collect();
            Ok(reply::json(&out))
        }
        .await,
    )
}

/// `GET /v1/agent/checks`: this node's checks by id, those of services the caller may read.
pub async fn checks(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let node = api.discovery().agent().node.clone();
            let member = api.member();
            let catalog = api.live().read();
            let mut out = BTreeMap::new();
            for stored in catalog.instances() {
                let i = &stored.registration.instance;
                if i.node != node || access::service(member, &call.who, &i.service, PermKind::Read).is_err() {
                    continue;
                }
                for def in &stored.registration.checks {
                    out.insert(def.id.to_string(), agent_check(i, def, catalog.check(&i.reference(), &def.id)));
                }
            }
            Ok(reply::json(&out))
        }
        .await,
    )
}

/// `GET /v1/agent/self`: the agent's configuration (`Config.Datacenter`, `Config.NodeName`) and its `Member`.
pub async fn agent_self(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            access::user(api.member(), &call.who)?;
            let agent = api.discovery().agent();
            let config = api.member().config();
            let port = config.client_addr().map_or(0, |a| a.port());
            let zone = agent.zone.as_ref().map_or(String::new(), |z| z.0.clone());
            Ok(reply::json(&json!({
                "Config": {
                    "Datacenter": agent.dc.0,
                    "NodeName": agent.node.as_str(),
                    "NodeID": "",
                    "Server": true,
                    "Version": env!("CARGO_PKG_VERSION"),
                    "Revision": "",
                },
                "Member": {
                    "Name": agent.node.as_str(),
                    "Addr": agent.node_address,
                    "Port": port,
                    "Tags": { "dc": agent.dc.0, "zone": zone, "role": "meridian" },
                    "Status": 1,
                },
                "Meta": { "meridian-zone": zone },
            })))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_given_in_hex_as_etcdctl_prints_it() {
        assert_eq!(lease_param(None).unwrap(), None);
        assert_eq!(lease_param(Some("694d7a2c1b")).unwrap(), Some(LeaseId(0x694d7a2c1b)));
        assert_eq!(lease_param(Some("0x10")).unwrap(), Some(LeaseId(16)));
        for bad in ["0", "xyz", "-5", "ffffffffffffffffff"] {
            let e = lease_param(Some(bad)).unwrap_err();
            assert!(e.contains("etcd lease id in hex"), "{bad}: {e}");
        }
    }
}
