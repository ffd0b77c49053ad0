//! The Consul-compatible HTTP API (issue 26), on its own listener (`--listen-http`, Consul's
//! `127.0.0.1:8500` by default), so that Consul's clients (python3-consul, curl scripts, Prometheus) work
//! against Meridian unchanged: the agent endpoints register and deregister instances and take TTL reports,
//! the catalog and health endpoints answer from the member's discovery catalog with blocking queries, KV maps
//! onto the etcd keyspace through the same Raft commands as gRPC, and Meridian's own `/v1/query/<svc>` and
//! `/v1/sd/prometheus` show the ranked answer and Prometheus's HTTP service discovery.
//!
//! This module only serves: parsing and Consul's shapes are `meridian_registry::consul`, the catalog and the
//! writes `crate::discovery`. One concern per file: [`params`] (query strings), [`reply`] (answers, errors and
//! the `X-Consul-*` headers), [`access`] (credentials and permissions), [`blocking`] (holding requests until
//! something changes), the endpoint groups ([`agent`], [`catalog`], [`health`], [`kv`], [`status`],
//! [`ranked`], [`prometheus`]), [`routes`] (the paths) and [`serve`] (the listener).

pub mod access;
pub mod agent;
pub mod blocking;
pub mod catalog;
pub mod health;
pub mod kv;
pub mod kv_shape;
pub mod params;
pub mod prometheus;
pub mod ranked;
pub mod reply;
pub mod routes;
pub mod serve;
pub mod status;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use meridian_proto::meridianpb::RequestAuth;

pub use routes::router;
pub use serve::HttpServer;

use crate::discovery::Discovery;
use crate::discovery::live::LiveCatalog;
use crate::member::Member;
use params::Params;
use reply::Refusal;

/// What every handler shares: the member's discovery (and through it the member).
#[derive(Clone)]
pub struct Api {
    discovery: Arc<Discovery>,
}

impl Api {
    /// The API over `discovery`.
    pub fn new(discovery: Arc<Discovery>) -> Api {
        Api { discovery }
    }

    /// Discovery on this member.
    pub fn discovery(&self) -> &Arc<Discovery> {
        &self.discovery
    }

    /// The member.
    pub fn member(&self) -> &Arc<Member> {
        self.discovery.member()
    }

    /// The member's catalog.
    pub fn live(&self) -> &Arc<LiveCatalog> {
        self.discovery.live()
    }
}

/// One request, taken apart: its query, headers, body and caller.
pub struct Call {
    /// The query string.
    pub params: Params,
    /// The method, URI, headers and extensions.
    pub parts: Parts,
    /// The body, unread.
    pub body: Body,
    /// Who is calling.
    pub who: RequestAuth,
}

/// Takes `req` apart and judges its credentials.
pub async fn begin(api: &Api, req: Request) -> Result<Call, Refusal> {
    let (parts, body) = req.into_parts();
    let params = Params::parse(parts.uri.query());
    let who = access::caller(api.member(), &parts, &params).await?;
    Ok(Call { params, parts, body, who })
}

/// Reads a request body of at most `limit` bytes; a larger one is a 400 saying so.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Refusal> {
    Ok(axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| reply::bad_request(&format!("Request body too large: more than {limit} bytes")))?)
}
