//! `/failover`: the failover groups of the user's services. `GET /failover` reports every group (active
//! datacenter, token, since, hooks not yet acknowledged); `POST /failover/<group>/promote` (body
//! `{"dc": "dc-b"}`) and `POST /failover/<group>/demote` switch a group by an operator's order;
//! `PUT /failover/groups/<name>` (body: the group's definition, as in the topology file) defines or redefines
//! one and `DELETE /failover/groups/<name>` removes one defined so. Every refusal is a JSON `{"error": ...}`
//! with a status that says what kind: 400 bad input, 404 no such group, 409 the switch is not allowed now,
//! 503 the cluster did not answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meridian_failover::Error as Refusal;
use meridian_types::{DcName, FailoverGroupSpec, GroupName};
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::error_chain::chain;
use crate::failover_groups::FailoverReport;
use crate::failover_groups::ops::{self, OpError};

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorBody { error })).into_response()
}

fn refused(e: OpError) -> Response {
    let status = match &e {
        OpError::UnknownGroup(_) => StatusCode::NOT_FOUND,
        OpError::Invalid(_) | OpError::Refused(Refusal::NotInGroup { .. }) => StatusCode::BAD_REQUEST,
        OpError::Refused(_) | OpError::InTopology(_) | OpError::Raced(_) => StatusCode::CONFLICT,
        OpError::Cluster(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, chain(&e))
}

/// What a definition or removal answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The group.
    pub group: GroupName,
    /// The revision of the write.
    pub revision: i64,
}

/// The body of a promote.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    dc: DcName,
}

/// `GET /failover`.
pub(super) async fn get_failover(State(state): State<AdminState>) -> Response {
    match ops::report(&state.member).await {
        Ok(groups) => Json(FailoverReport { groups }).into_response(),
        Err(e) => refused(e),
    }
}

/// `POST /failover/<group>/promote`.
pub(super) async fn promote(State(state): State<AdminState>, Path(group): Path<String>, body: Bytes) -> Response {
    let body: PromoteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid promote body ({e}): send {{\"dc\": \"<datacenter>\"}}"),
            );
        }
    };
    match ops::promote(&state.member, &GroupName(group), &body.dc).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => refused(e),
    }
}

/// `POST /failover/<group>/demote` (any body is ignored).
pub(super) async fn demote(State(state): State<AdminState>, Path(group): Path<String>) -> Response {
    match ops::demote(&state.member, &GroupName(group)).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => refused(e),
    }
}

/// The definition in `body` for the group named `name` in the path (the body may leave the name out).
fn definition(name: &str, body: &[u8]) -> Result<FailoverGroupSpec, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid failover group definition: {e}"))?;
    let object = value.as_object_mut().ok_or("invalid failover group definition: expected a JSON object")?;
    match object.get("name") {
        None => {
            object.insert("name".into(), name.into());
        }
        Some(serde_json::Value::String(n)) if n == name => {}
        Some(other) => return Err(format!("the body names group {other}, the path {name:?}")),
    }
    serde_json::from_value(value).map_err(|e| format!("invalid failover group definition: {e}"))
}

/// `PUT /failover/groups/<name>`.
pub(super) async fn put_group(State(state): State<AdminState>, Path(name): Path<String>, body: Bytes) -> Response {
    let spec = match definition(&name, &body) {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match ops::define(&state.member, &spec).await {
        Ok(revision) => Json(Written { group: spec.name, revision: revision.0 }).into_response(),
        Err(e) => refused(e),
    }
}

/// `DELETE /failover/groups/<name>`.
pub(super) async fn delete_group(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let group = GroupName(name);
    match ops::remove(&state.member, &group).await {
        Ok(revision) => Json(Written { group, revision: revision.0 }).into_response(),
        Err(e) => refused(e),
    }
}
