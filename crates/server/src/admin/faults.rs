//! `GET /faults` and `PUT /faults`: read and replace the emulated WAN and partitions at run time. Mounted only
//! with `--enable-fault-injection`. The body is the whole description (links as in the topology's `[wan]`
//! section, plus isolated members and datacenters); a PUT replaces everything, so healing is a PUT of the
//! original links.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meridian_types::wan::{LinkSpec, WanConfig};
use meridian_types::{DcName, NodeId};
use serde::{Deserialize, Serialize};

use super::AdminState;
use super::status::hex_id;
use crate::fault::Faults;

/// The JSON body of `GET`/`PUT /faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Per-link round-trip time, loss and cuts (the topology's `[wan]` links).
    pub links: Vec<LinkSpec>,
    /// Members cut off from everyone: member names or hex member ids.
    pub isolated_members: Vec<String>,
    /// Datacenters cut off from every other datacenter.
    pub isolated_dcs: Vec<DcName>,
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn bad_request(error: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(ErrorBody { error })).into_response()
}

/// Member names (or hex ids) to ids, through this member's view of the membership.
fn resolve(state: &AdminState, names: &[String]) -> Result<Vec<NodeId>, String> {
    let members = state.member.raft().status().members;
    names
        .iter()
        .map(|n| {
            if let Some((id, _)) = members.iter().find(|(_, m)| &m.name == n) {
                return Ok(*id);
            }
            u64::from_str_radix(n.trim_start_matches("0x"), 16)
                .map(NodeId)
                .map_err(|_| format!("isolated_members: {n:?} is neither a member name nor a hex member id"))
        })
        .collect()
}

/// The current faults as a [`FaultSpec`], members by name where known.
fn current(state: &AdminState, faults: &Faults) -> FaultSpec {
    let members = state.member.raft().status().members;
    FaultSpec {
        links: faults.wan.links.clone(),
        isolated_members: faults
            .isolated_members
            .iter()
            .map(|id| members.get(id).map(|m| m.name.clone()).unwrap_or_else(|| hex_id(*id)))
            .collect(),
        isolated_dcs: faults.isolated_dcs.iter().cloned().collect(),
    }
}

/// `GET /faults`.
pub(super) async fn get_faults(State(state): State<AdminState>) -> Response {
    match &state.faults {
        Some(f) => Json(current(&state, &f.get())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `PUT /faults`: validate the whole body, then replace the faults in one step.
pub(super) async fn put_faults(State(state): State<AdminState>, body: Bytes) -> Response {
    let Some(fault_state) = &state.faults else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid fault description: {e}")),
    };
    let isolated = match resolve(&state, &spec.isolated_members) {
        Ok(ids) => ids,
        Err(e) => return bad_request(e),
    };
    let faults = Faults {
        wan: WanConfig { links: spec.links },
        isolated_members: isolated.into_iter().collect(),
        isolated_dcs: spec.isolated_dcs.into_iter().collect(),
    };
    if let Err(e) = fault_state.set(faults) {
        return bad_request(format!("invalid fault description: {e}"));
    }
    let now = fault_state.get();
    tracing::warn!(?now, "emulated faults replaced through the admin API");
    Json(current(&state, &now)).into_response()
}
