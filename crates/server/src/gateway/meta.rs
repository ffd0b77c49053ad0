//! The gateway's plain GET endpoints: `/version` (what Patroni reads to choose its API prefix, so both versions
//! are purely numeric and dotted) and `/health`.

use std::sync::Arc;

use axum::response::Response;
use serde_json::json;

use super::reply;
use crate::grpc::maintenance::ETCD_COMPAT_VERSION;
use crate::member::Member;

/// The cluster version Meridian speaks (etcd's `etcdcluster`: major.minor.0).
const CLUSTER_VERSION: &str = "3.5.0";

/// `GET /version`.
pub fn version() -> Response {
    reply::ok(&json!({ "etcdserver": ETCD_COMPAT_VERSION, "etcdcluster": CLUSTER_VERSION }))
}

/// `GET /health`: healthy while this member knows a leader, as etcd's answers.
pub fn health(member: &Arc<Member>) -> Response {
    let healthy = member.raft().current_leader().is_some();
    let mut res = reply::ok(&json!({ "health": if healthy { "true" } else { "false" } }));
    if !healthy {
        *res.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    res
}
