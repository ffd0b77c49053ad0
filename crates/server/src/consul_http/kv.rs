//! `/v1/kv/<key>`: Consul's KV on the etcd keyspace (see [`super::kv_shape`] for the mapping). Reads are
//! linearizable (a read barrier first; `?stale` skips it) and judged by the caller's read permission on the
//! key or prefix; writes go through `Member::propose` with the caller in the command, so permissions, quotas
//! and the reserved keyspace apply exactly as on gRPC. `?cas=<mod revision>` makes a write conditional (0:
//! only if the key does not exist) and answers `true` or `false`. Blocking queries wait on an internal watch.
//! Sessions (`?acquire`, `?release`) are refused; `?flags` is accepted but not stored. As on gRPC, a write
//! under `/meridian/` is refused, and a recursive delete over a wider range spares the reserved keys.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meridian_kv::{CommandResponse, PermKind};
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request as Op;
use meridian_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
};
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::meridianpb::{RaftCommand, RequestAuth};

use super::params::Params;
use super::reply::{self, Answer, Refusal, done};
use super::{Api, Call, access, begin, blocking, kv_shape, read_body};
use crate::member::Member;

/// `GET|PUT|DELETE /v1/kv/` (the empty key: with `?recurse` or `?keys`, every key).
pub async fn root(State(api): State<Api>, req: Request) -> Response {
    serve(api, String::new(), req).await
}

/// `GET|PUT|DELETE /v1/kv/<key>`.
pub async fn key(State(api): State<Api>, Path(key): Path<String>, req: Request) -> Response {
    serve(api, key, req).await
}

async fn serve(api: Api, key: String, req: Request) -> Response {
    let method = req.method().clone();
    let member = api.member().clone();
    match method.as_str() {
        "GET" | "HEAD" => get(&api, &key, req).await,
        "PUT" | "POST" => done(async { put(&member, &key, begin(&api, req).await?).await }.await),
        "DELETE" => done(async { delete(&member, &key, begin(&api, req).await?).await }.await),
        _ => reply::text(StatusCode::METHOD_NOT_ALLOWED, &format!("method {method} not allowed")),
    }
}

/// Reads `[key, end)` from the member's store, with its revision.
fn read(member: &Member, key: &[u8], end: &[u8], keys_only: bool) -> Result<(RangeResponse, i64), Refusal> {
    let req = RangeRequest { key: key.to_vec(), range_end: end.to_vec(), keys_only, ..Default::default() };
    let kv = member.kv().read();
    let resp = kv.range(&req).map_err(|e| match e {
        meridian_kv::Error::Etcd(e) => reply::etcd(&e),
        other => reply::text(StatusCode::INTERNAL_SERVER_ERROR, &format!("etcdserver: {other}")),
    })?;
    Ok((resp, kv.current_revision().0))
}

async fn get(api: &Api, key: &str, req: Request) -> Response {
    let member = api.member();
    let store_revision = || member.kv().read().current_revision().0;
    let call = match begin(api, req).await {
        Ok(call) => call,
        Err(res) => return reply::indexed(*res, kv_shape::index(&[], store_revision()), member),
    };
    let listing = call.params.get("keys").is_some();
    let prefix = listing || call.params.flag("recurse");
    let (start, end) = kv_shape::range(key, prefix);
    let mut index = kv_shape::index(&[], store_revision());
    let answer = async {
        access::allow(member, &call.who, &start, &end, PermKind::Read)?;
        let blocking = call.params.blocking().map_err(|e| reply::bad_request(&e))?;
        if call.params.get("stale").is_none() {
            member.read_barrier().await.map_err(|e| reply::etcd(&e))?;
        }
        let (mut resp, mut revision) = read(member, &start, &end, listing)?;
        if let Some(b) = blocking
            && kv_shape::index(&resp.kvs, revision) <= b.index
        {
            blocking::kv(member, &start, &end, b.index, b.wait).await;
            (resp, revision) = read(member, &start, &end, listing)?;
        }
        index = kv_shape::index(&resp.kvs, revision);
        // After deletions under a prefix its highest mod revision can go back: answer the store's revision then.
        if blocking.is_some_and(|b| index < b.index) {
            index = kv_shape::index(&[], revision);
        }
        render(&call.params, key, &resp)
    }
    .await;
    reply::indexed_answer(answer, index, member)
}

fn render(params: &Params, key: &str, resp: &RangeResponse) -> Answer {
    if resp.kvs.is_empty() {
        return Err(reply::not_found("").into());
    }
    if params.get("keys").is_some() {
        let keys: Vec<String> = resp.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect();
        return Ok(reply::json(&kv_shape::keys(&keys, key, params.get("separator").unwrap_or_default())));
    }
    if params.get("raw").is_some() && !params.flag("recurse") {
        let value = resp.kvs[0].value.clone();
        return Ok(
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], value).into_response()
        );
    }
    Ok(reply::json(&resp.kvs.iter().map(kv_shape::entry).collect::<Vec<_>>()))
}

/// Refuses Consul's session operations, which Meridian's KV does not have.
fn no_sessions(call: &Call) -> Result<(), Refusal> {
    match ["acquire", "release"].iter().find(|p| call.params.get(p).is_some()) {
        Some(p) => {
            Err(reply::bad_request(&format!("?{p} is not supported: Meridian's KV has no Consul sessions")).into())
        }
        None => Ok(()),
    }
}

/// The comparison of `?cas=<n>`: 0 is "the key does not exist", else "its mod revision is n".
fn cas_compare(key: &[u8], cas: u64) -> Compare {
    let n = i64::try_from(cas).unwrap_or(i64::MAX);
    let (target, union) = if cas == 0 {
        (CompareTarget::Create, TargetUnion::CreateRevision(0))
    } else {
        (CompareTarget::Mod, TargetUnion::ModRevision(n))
    };
    Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.to_vec(),
        target_union: Some(union),
        ..Default::default()
    }
}

/// Proposes `op` as `who`, under `cas` when given; whether it took effect.
async fn write(member: &Member, who: RequestAuth, key: &[u8], op: Op, cas: Option<u64>) -> Result<bool, Refusal> {
    let cmd = match cas {
        Some(cas) => Cmd::Txn(TxnRequest {
            compare: vec![cas_compare(key, cas)],
            success: vec![RequestOp { request: Some(op) }],
            failure: Vec::new(),
        }),
        None => match op {
            Op::RequestPut(p) => Cmd::Put(p),
            Op::RequestDeleteRange(d) => Cmd::DeleteRange(d),
            other => Cmd::Txn(TxnRequest { success: vec![RequestOp { request: Some(other) }], ..Default::default() }),
        },
    };
    meridian_kv::check_client_command(&cmd).map_err(|e| reply::etcd(&e))?;
    let applied = member
        .propose(RaftCommand { auth: Some(who), cmd: Some(cmd), ..Default::default() })
        .await
        .map_err(|e| reply::etcd(&e))?;
    Ok(match applied {
        CommandResponse::Txn(t) => t.succeeded,
        _ => true,
    })
}

async fn put(member: &Member, key: &str, call: Call) -> Answer {
    no_sessions(&call)?;
    if key.is_empty() {
        return Err(reply::bad_request("Missing key name").into());
    }
    let cas = call.params.number("cas").map_err(|e| reply::bad_request(&e))?;
    call.params.number("flags").map_err(|e| reply::bad_request(&e))?;
    access::allow(member, &call.who, key.as_bytes(), &[], PermKind::Write)?;
    let value = read_body(call.body, member.config().max_request_bytes).await?;
    let put = PutRequest { key: key.as_bytes().to_vec(), value: value.to_vec(), ..Default::default() };
    member.check_size(&put).map_err(|e| reply::bad_request(&e.to_string()))?;
    let done = write(member, call.who, key.as_bytes(), Op::RequestPut(put), cas).await?;
    Ok(reply::json(&done))
}

async fn delete(member: &Member, key: &str, call: Call) -> Answer {
    no_sessions(&call)?;
    let recurse = call.params.flag("recurse");
    if key.is_empty() && !recurse {
        return Err(reply::bad_request("Missing key name").into());
    }
    let cas = call.params.number("cas").map_err(|e| reply::bad_request(&e))?;
    let (start, end) = kv_shape::range(key, recurse);
    access::allow(member, &call.who, &start, &end, PermKind::Write)?;
    let delete = DeleteRangeRequest { key: start.clone(), range_end: end, ..Default::default() };
    let done = write(member, call.who, &start, Op::RequestDeleteRange(delete), cas).await?;
    Ok(reply::json(&done))
}
