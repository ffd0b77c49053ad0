//! Meridian's own `GET /v1/query/<service>`: the ranked, failover-aware answer for a client near this member,
//! tier by tier with the reason each tier is where it is (`meridian_registry::rank::Ranked`), plus the
//! service's name and the catalog index it reflects. `?passing` leaves warning instances out; `?tag=`
//! (repeatable) filters; `?near=<member name>` ranks from that member's datacenter and zone (as on the health
//! endpoints); blocking queries as on the health endpoints. Left-out datacenters are listed by why:
//! `excluded_down` (their verdict) and `excluded_cut_off` (silent to this member: `discovery::answer`).

use axum::extract::{Path, Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::rank;
use meridian_registry::rank::{Candidate, Query, ServicePolicy};
use serde_json::Value;

use super::blocking::{answer, catalog_index};
use super::health::{locality, service_name};
use super::reply;
use super::{Api, access};
use crate::discovery::answer::{candidates, surroundings};
use crate::discovery::live::Watched;

/// `GET /v1/query/<service>`.
pub async fn query(State(api): State<Api>, Path(name): Path<String>, req: Request) -> Response {
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
            let around = surroundings(&member);
            let from = locality(&member, call.params.non_empty("near"));
            let tags = call.params.all("tag");
            let chosen: Vec<Candidate<'_>> = candidates(catalog, &service);
            let query = Query {
                from: &from,
                rtt_ms: &around.rtt_ms,
                down: &around.excluded,
                policy: ServicePolicy::default(),
                include_warning: !call.params.flag("passing"),
                tags: &tags,
                seed: None,
            };
            let ranked = rank(&chosen, &query);
            let mut out = serde_json::to_value(&ranked)
                .map_err(|e| reply::text(axum::http::StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
            if let Value::Object(map) = &mut out {
                let name = |dc: &meridian_types::DcName| Value::String(dc.0.clone());
                let cut_off = around.cut_off.difference(&around.down).map(name).collect();
                map.insert("excluded_down".into(), around.down.iter().map(name).collect());
                map.insert("excluded_cut_off".into(), cut_off);
                map.insert("service".into(), Value::String(service.to_string()));
                map.insert("index".into(), Value::from(catalog_index(catalog, &Watched::Service(service.clone()))));
            }
            Ok(reply::json(&out))
        },
    )
    .await
}
