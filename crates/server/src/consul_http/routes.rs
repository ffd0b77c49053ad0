//! The HTTP API's paths, each mapped to its handler. Check reports and deregistrations answer GET as well as
//! PUT (python3-consul sends GET). Unknown paths answer 404, known paths with another method 405.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, put};
use meridian_registry::Outcome;

use super::{Api, agent, catalog, health, kv, prometheus, ranked, reply, status};
use crate::discovery::Discovery;

/// `PUT|GET` on one handler.
fn put_or_get(route: MethodRouter<Api>) -> MethodRouter<Api> {
    route.fallback(|| async { reply::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use PUT or GET") })
}

/// A TTL report route for `outcome`.
fn report(outcome: Outcome) -> MethodRouter<Api> {
    let handler = move |State(api): State<Api>, Path(id): Path<String>, req: Request| async move {
        agent::check_report(api, outcome, id, req).await
    };
    put_or_get(put(handler).get(handler))
}

/// The router of the HTTP API over `discovery`.
pub fn router(discovery: Arc<Discovery>) -> Router {
    Router::new()
        .route("/v1/agent/service/register", put(agent::register))
        .route("/v1/agent/service/deregister/{id}", put_or_get(put(agent::deregister).get(agent::deregister)))
        .route("/v1/agent/check/pass/{id}", report(Outcome::Pass))
        .route("/v1/agent/check/warn/{id}", report(Outcome::Warn))
        .route("/v1/agent/check/fail/{id}", report(Outcome::Fail))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/v1/agent/check/register", put(agent::check_register))
        .route("/v1/agent/check/deregister/{id}", put_or_get(put(agent::check_deregister).get(agent::check_deregister)))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{service}", get(catalog::service))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/health/service/{service}", get(health::service))
        .route("/v1/health/checks/{service}", get(health::checks))
        .route("/v1/health/state/{state}", get(health::state))
        .route("/v1/kv/", get(kv::root).put(kv::root).delete(kv::root))
        .route("/v1/kv/{*key}", get(kv::key).put(kv::key).delete(kv::key))
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route("/v1/query/{service}", get(ranked::query))
        .route("/v1/sd/prometheus", get(prometheus::targets))
        .fallback(|| async { reply::not_found("Not Found") })
        // Bodies are limited where they are read (registrations, KV values), with messages of their own.
        .layer(DefaultBodyLimit::disable())
        .with_state(Api::new(discovery))
}
