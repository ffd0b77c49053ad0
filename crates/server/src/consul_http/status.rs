//! `/v1/status/leader` and `/v1/status/peers`: the Raft leader's and the voters' peer addresses (`ip:port`),
//! as JSON strings; `""` while no leader is known, as Consul answers.

use axum::extract::State;
use axum::response::Response;

use super::catalog::url_authority;
use super::{Api, reply};

/// `GET /v1/status/leader`.
pub async fn leader(State(api): State<Api>) -> Response {
    let raft = api.member().raft();
    let addr =
        raft.current_leader().and_then(|id| raft.member(id)).map_or(String::new(), |m| url_authority(&m.peer_url));
    reply::json(&addr)
}

/// `GET /v1/status/peers`.
pub async fn peers(State(api): State<Api>) -> Response {
    let status = api.member().raft().status();
    let peers: Vec<String> =
        status.voters.iter().filter_map(|id| status.members.get(id)).map(|m| url_authority(&m.peer_url)).collect();
    reply::json(&peers)
}
