//! Meridian's own `GET /v1/query/<service>`: the ranked, failover-aware answer for a client near this member,
//! tier by tier with the reason each tier is where it is (`meridian_registry::rank::Ranked`), plus the
//! service's name and the catalog index it reflects. `?passing` leaves warning instances out; `?tag=`
//! (repeatable) filters; blocking queries as on the health endpoints.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::rank;
use meridian_registry::rank::{Candidate, Query, ServicePolicy};
use serde_json::Value;

use super::blocking::{answer, catalog_index};
use super::health::service_name;
use super::reply;
use super::{Api, access};
use crate::discovery::answer::{candidates, own_locality, surroundings};
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
            let from = own_locality(&member);
            let tags = call.params.all("tag");
            let chosen: Vec<Candidate<'_>> = candidates(catalog, &service);
            let query = Query {
                from: &from,
                rtt_ms: &around.rtt_ms,
                down: &around.down,
                policy: ServicePolicy::default(),
                include_warning: !call.params.flag("passing"),
                tags: &tags,
                seed: None,
            };
            let ranked = rank(&chosen, &query);
            let mut out = serde_json::to_value(&ranked)
                .map_err(|e| reply::text(axum::http::StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
            if let Value::Object(map) = &mut out {
                map.insert("service".into(), Value::String(service.to_string()));
                map.insert("index".into(), Value::from(catalog_index(catalog, &Watched::Service(service.clone()))));
            }
            Ok(reply::json(&out))
        },
    )
    .await
}
