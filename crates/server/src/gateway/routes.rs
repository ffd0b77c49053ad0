//! The gateway's paths, as etcd 3.4's `google.api.http` annotations name them, each mapped to the service
//! method a gRPC call of the same RPC reaches. Every path answers under `/v3/` and its `/v3beta/` alias.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use meridian_proto::etcdserverpb::auth_server::Auth;
use meridian_proto::etcdserverpb::cluster_server::Cluster;
use meridian_proto::etcdserverpb::kv_server::Kv;
use meridian_proto::etcdserverpb::lease_server::Lease;
use meridian_proto::etcdserverpb::maintenance_server::Maintenance;
use meridian_proto::v3electionpb::election_server::Election;
use meridian_proto::v3lockpb::lock_server::Lock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;
use tower::util::MapResponseLayer;

use super::{body, meta, reply, stream};
use crate::grpc::{
    auth::AuthService, cluster::ClusterService, election::ElectionService, kv::KvService, lease::LeaseService,
    lock::LockService, maintenance::MaintenanceService,
};
use crate::member::Member;

/// A unary call: `$svc.$method` behind a route taking at most `$limit` bytes of message.
macro_rules! unary {
    ($svc:expr, $method:ident, $limit:expr) => {{
        let svc = $svc.clone();
        unary_route($limit, move |req| {
            let svc = svc.clone();
            async move { svc.$method(req).await }
        })
    }};
}

/// A server-streaming call: `$svc.$method` answered as lines.
macro_rules! server_streaming {
    ($svc:expr, $method:ident, $limit:expr) => {{
        let svc = $svc.clone();
        let limit = $limit;
        route(post(move |req: Request| {
            let svc = svc.clone();
            async move {
                match body::one(req, limit).await {
                    Ok(req) => stream::lines(svc.$method(req).await),
                    Err(status) => reply::error(&status),
                }
            }
        }))
    }};
}

/// The gateway of `member`, taking requests of at most `limit` bytes of protobuf. Paths it does not know answer
/// 404, except gRPC calls, which get gRPC's `Unimplemented`.
pub fn router(member: Arc<Member>, limit: usize) -> Router {
    let kv = Arc::new(KvService::new(member.clone()));
    let lease = Arc::new(LeaseService::new(member.clone()));
    let cluster = Arc::new(ClusterService::new(member.clone()));
    let maintenance = Arc::new(MaintenanceService::new(member.clone()));
    let auth = Arc::new(AuthService::new(member.clone()));
    let lock = Arc::new(LockService::new(member.clone()));
    let election = Arc::new(ElectionService::new(member.clone()));

    let watch_member = member.clone();
    let keep_alive_member = member.clone();
    let rpcs: Vec<(&str, MethodRouter)> = vec![
        ("kv/range", unary!(kv, range, limit)),
        ("kv/put", unary!(kv, put, limit)),
        ("kv/deleterange", unary!(kv, delete_range, limit)),
        ("kv/txn", unary!(kv, txn, limit)),
        ("kv/compaction", unary!(kv, compact, limit)),
        ("watch", route(post(move |req: Request| stream::watch(watch_member, req, limit)))),
        ("lease/grant", unary!(lease, lease_grant, limit)),
        ("lease/revoke", unary!(lease, lease_revoke, limit)),
        ("kv/lease/revoke", unary!(lease, lease_revoke, limit)),
        ("lease/keepalive", route(post(move |req: Request| stream::keep_alive(keep_alive_member, req, limit)))),
        ("lease/timetolive", unary!(lease, lease_time_to_live, limit)),
        ("kv/lease/timetolive", unary!(lease, lease_time_to_live, limit)),
        ("lease/leases", unary!(lease, lease_leases, limit)),
        ("kv/lease/leases", unary!(lease, lease_leases, limit)),
        ("cluster/member/add", unary!(cluster, member_add, limit)),
        ("cluster/member/remove", unary!(cluster, member_remove, limit)),
        ("cluster/member/update", unary!(cluster, member_update, limit)),
        ("cluster/member/list", unary!(cluster, member_list, limit)),
        ("cluster/member/promote", unary!(cluster, member_promote, limit)),
        ("maintenance/alarm", unary!(maintenance, alarm, limit)),
        ("maintenance/status", unary!(maintenance, status, limit)),
        ("maintenance/defragment", unary!(maintenance, defragment, limit)),
        // etcd registers Hash and HashKV on the same path; its router takes the first, Hash.
        ("maintenance/hash", unary!(maintenance, hash, limit)),
        ("maintenance/snapshot", server_streaming!(maintenance, snapshot, limit)),
        ("maintenance/transfer-leadership", unary!(maintenance, move_leader, limit)),
        ("auth/enable", unary!(auth, auth_enable, limit)),
        ("auth/disable", unary!(auth, auth_disable, limit)),
        ("auth/authenticate", unary!(auth, authenticate, limit)),
        ("auth/user/add", unary!(auth, user_add, limit)),
        ("auth/user/get", unary!(auth, user_get, limit)),
        ("auth/user/list", unary!(auth, user_list, limit)),
        ("auth/user/delete", unary!(auth, user_delete, limit)),
        ("auth/user/changepw", unary!(auth, user_change_password, limit)),
        ("auth/user/grant", unary!(auth, user_grant_role, limit)),
        ("auth/user/revoke", unary!(auth, user_revoke_role, limit)),
        ("auth/role/add", unary!(auth, role_add, limit)),
        ("auth/role/get", unary!(auth, role_get, limit)),
        ("auth/role/list", unary!(auth, role_list, limit)),
        ("auth/role/delete", unary!(auth, role_delete, limit)),
        ("auth/role/grant", unary!(auth, role_grant_permission, limit)),
        ("auth/role/revoke", unary!(auth, role_revoke_permission, limit)),
        ("lock/lock", unary!(lock, lock, limit)),
        ("lock/unlock", unary!(lock, unlock, limit)),
        ("election/campaign", unary!(election, campaign, limit)),
        ("election/proclaim", unary!(election, proclaim, limit)),
        ("election/leader", unary!(election, leader, limit)),
        ("election/observe", server_streaming!(election, observe, limit)),
        ("election/resign", unary!(election, resign, limit)),
    ];

    let mut router = Router::new();
    for (path, method) in rpcs {
        router = router.route(&format!("/v3/{path}"), method.clone()).route(&format!("/v3beta/{path}"), method);
    }
    let health_member = member;
    router
        .route("/version", get(|| async { meta::version() }))
        .route("/health", get(move || async move { meta::health(&health_member) }))
        .fallback(not_found)
        .layer(MapResponseLayer::new(cors))
}

/// A unary call's route: the body as `Req`, the answer as JSON.
fn unary_route<Req, Resp, F, Fut>(limit: usize, call: F) -> MethodRouter
where
    Req: DeserializeOwned + prost::Message + Default + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(tonic::Request<Req>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>> + Send + 'static,
{
    route(post(move |req: Request| async move {
        match body::one::<Req>(req, limit).await {
            Ok(req) => match call(req).await {
                Ok(answer) => reply::ok(answer.get_ref()),
                Err(status) => reply::error(&status),
            },
            Err(status) => reply::error(&status),
        }
    }))
}

/// `method` answering browsers' CORS preflight too, as etcd's gateway does, and other methods with its 405.
fn route(method: MethodRouter) -> MethodRouter {
    method
        .options(|| async { StatusCode::OK })
        .fallback(|| async { (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n") })
}

/// etcd's gateway allows any origin.
fn cors(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"));
    headers
        .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("accept, content-type, authorization"));
    res
}

/// An unknown path: gRPC's `Unimplemented` for a gRPC call (an RPC this server lacks), else a plain 404.
async fn not_found(req: Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = Status::unimplemented("").into_http::<()>().into_parts();
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    (StatusCode::NOT_FOUND, "Not Found\n").into_response()
}
