//! `/v1/health/*`: one service's instances with their checks, nearest healthy first (the ranking from this
//! member's locality: its zone, its datacenter, then the others by round-trip time, failing over past tiers
//! without healthy instances); one service's checks; every check in a state. Blocking queries throughout.
//!
//! `/v1/health/service/<svc>` without `?passing` lists every instance as Consul does, critical ones after the
//! ranked healthy ones; with `?passing` only passing ones. `?near=_agent` (the default) ranks from the
//! answering member's locality; `?near=<member name>` from that member's datacenter and zone (an unknown name
//! falls back to the answering member's).

use axum::extract::{Path, Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::consul::{CheckStates, HealthCheck, health_check, health_entry};
use meridian_registry::rank::{Candidate, Locality, Query, ServicePolicy};
use meridian_registry::{InstanceRef, ServiceName, Status, rank};
use meridian_types::{DcName, ZoneName};

use super::blocking::answer;
use super::reply::{self, Refusal};
use super::{Api, access};
use crate::discovery::answer::{candidates, own_locality, surroundings};
use crate::discovery::catalog::{Catalog, Stored};
use crate::discovery::live::Watched;
use crate::member::Member;

/// The service named in a path, or the 400 (with the blocking headers) that refuses it.
pub fn service_name(api: &Api, name: &str) -> Result<ServiceName, Refusal> {
    ServiceName::new(name).map_err(|e| reply::indexed(reply::bad_request(&e.message()), 1, api.member()).into())
}

/// Whether `stored` passes the `?tag=` and `?dc=` filters.
fn selected(stored: &Stored, tags: &[String], dc: Option<&str>) -> bool {
    let i = &stored.registration.instance;
    i.has_tags(tags) && dc.is_none_or(|dc| i.dc.0 == dc)
}

/// Where a query with `?near=` `near` is ranked from: a cluster member's datacenter and zone when `near`
/// names one, else `member`'s own locality.
pub fn locality(member: &Member, near: Option<&str>) -> Locality {
    let named = near.filter(|n| *n != "_agent").and_then(|name| {
        let status = member.raft().status();
        status.members.values().find(|m| m.name == name).map(|m| Locality {
            dc: DcName(m.dc.clone()),
            zone: (!m.zone.is_empty()).then(|| ZoneName(m.zone.clone())),
        })
    });
    named.unwrap_or_else(|| own_locality(member))
}

/// The instances of `service` as `member` ranks them: the healthy ones nearest first (passing only when
/// `passing`), then, unless `passing`, every other selected instance in catalog order.
pub fn ordered(
    member: &Member,
    catalog: &Catalog,
    service: &ServiceName,
    tags: &[String],
    dc: Option<&str>,
    passing: bool,
    from: &Locality,
) -> Vec<InstanceRef> {
    let around = surroundings(member);
    let chosen: Vec<Candidate<'_>> =
        candidates(catalog, service).into_iter().filter(|c| dc.is_none_or(|dc| c.instance.dc.0 == dc)).collect();
    let query = Query {
        from,
        rtt_ms: &around.rtt_ms,
        down: &around.excluded,
        policy: ServicePolicy::default(),
        include_warning: !passing,
        tags,
        seed: None,
    };
    let ranked = rank(&chosen, &query);
    let mut out: Vec<InstanceRef> = ranked.answer().iter().map(|e| e.instance.reference()).collect();
    if !passing {
        let rest: Vec<InstanceRef> = catalog
            .service(service)
            .filter(|s| selected(s, tags, dc))
            .map(|s| s.registration.instance.reference())
            .filter(|r| !out.contains(r))
            .collect();
        out.extend(rest);
    }
    out
}

/// `GET /v1/health/service/<svc>` (`?passing`, `?tag=` repeatable, `?dc=`, `?near=`).
pub async fn service(State(api): State<Api>, Path(name): Path<String>, req: Request) -> Response {
    let service = match service_name(&api, &name) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let allowed = service.clone();
    let member = api.member().clone();
    answer(
        &api,
        req,
        Watched::Service(service.clone()),
        move |m, who| access::service(m, who, &allowed, PermKind::Read),
        move |call, catalog| {
            let tags = call.params.all("tag");
            let from = locality(&member, call.params.non_empty("near"));
            let (dc, passing) = (call.params.non_empty("dc"), call.params.flag("passing"));
            let order = ordered(&member, catalog, &service, &tags, dc, passing, &from);
            let entries: Vec<_> = order
                .iter()
                .filter_map(|r| catalog.instance(r).map(|s| (r, s)))
                .map(|(r, s)| health_entry(&s.registration, s.indexes, &catalog.checks_of(r)))
                .collect();
            Ok(reply::json(&entries))
        },
    )
    .await
}

/// Every check of `stored`, as `/v1/health/*` shows them (a check without a record yet carries its
/// registration's indexes).
fn checks_of(stored: &Stored, states: &CheckStates) -> Vec<HealthCheck> {
    let i = &stored.registration.instance;
    stored
        .registration
        .checks
        .iter()
        .map(|def| {
            let mut c = health_check(i, def, states.get(&def.id));
            c.create_index.get_or_insert(stored.indexes.create);
            c.modify_index.get_or_insert(stored.indexes.modify);
            c
        })
        .collect()
}

/// `GET /v1/health/checks/<svc>`.
pub async fn checks(State(api): State<Api>, Path(name): Path<String>, req: Request) -> Response {
    let service = match service_name(&api, &name) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let allowed = service.clone();
    answer(
        &api,
        req,
        Watched::Service(service.clone()),
        move |m, who| access::service(m, who, &allowed, PermKind::Read),
        move |_, catalog| {
            let out: Vec<HealthCheck> = catalog
                .service(&service)
                .flat_map(|s| checks_of(s, &catalog.checks_of(&s.registration.instance.reference())))
                .collect();
            Ok(reply::json(&out))
        },
    )
    .await
}

/// `GET /v1/health/state/<state>`: `any`, `passing`, `warning` or `critical`.
pub async fn state(State(api): State<Api>, Path(state): Path<String>, req: Request) -> Response {
    let wanted: Option<Status> = match state.as_str() {
        "any" => None,
        other => match Status::parse(other) {
            Ok(s) => Some(s),
            Err(_) => {
                let res = reply::bad_request(&format!(
                    "Invalid check state {other:?}: expected any, passing, warning or critical"
                ));
                return reply::indexed(res, 1, api.member());
            }
        },
    };
    answer(&api, req, Watched::Everything, access::catalog, move |_, catalog| {
        let out: Vec<HealthCheck> = catalog
            .instances()
            .flat_map(|s| checks_of(s, &catalog.checks_of(&s.registration.instance.reference())))
            .filter(|c| wanted.is_none_or(|w| c.status == w.as_str()))
            .collect();
        Ok(reply::json(&out))
    })
    .await
}
