//! Who may call the admin API: a bearer token checked by an [`AdminAuthorizer`]. The default,
//! [`TokenAuthorizer`], accepts only the configured `admin_token` (compared in constant time); the etcd Auth
//! service can stand in for it. `/health` and `/metrics` stay open when `admin_open_health_metrics` is on. A
//! missing or wrong token is a 401 with a JSON error body.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::AdminState;

/// Decides whether a bearer token grants the admin API.
pub trait AdminAuthorizer: Send + Sync {
    /// Whether `bearer` (the token after `Authorization: Bearer `) is an admin's.
    fn is_admin(&self, bearer: &str) -> bool;
}

/// Accepts exactly the configured token; with none configured, nothing.
pub struct TokenAuthorizer {
    token: Option<String>,
}

impl TokenAuthorizer {
    /// An authorizer for `token` (`None`: every token is refused).
    pub fn new(token: Option<String>) -> Self {
        TokenAuthorizer { token }
    }
}

impl AdminAuthorizer for TokenAuthorizer {
    fn is_admin(&self, bearer: &str) -> bool {
        // Constant time in the content; the length of the configured token is not a secret worth hiding.
        self.token.as_deref().is_some_and(|t| bool::from(t.as_bytes().ct_eq(bearer.as_bytes())))
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
}

/// The middleware in front of every admin route.
pub(super) async fn require_admin(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(authorizer) = &state.authorizer else { return next.run(req).await };
    let path = req.uri().path();
    if state.open_health_metrics && (path == "/health" || path == "/metrics") {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match bearer {
        Some(token) if authorizer.is_admin(token.trim()) => next.run(req).await,
        Some(_) => unauthorized("invalid admin token"),
        None => unauthorized("missing admin token: send Authorization: Bearer <token>"),
    }
}

fn unauthorized(error: &'static str) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(ErrorBody { error })).into_response()
}

/// Accepts the configured token, or the etcd auth token of a user holding the root role (while auth is on): an
/// operator who administers the cluster through etcdctl uses the same credentials here.
pub struct RootOrToken {
    configured: TokenAuthorizer,
    member: std::sync::Arc<crate::member::Member>,
}

impl RootOrToken {
    /// Accepts `token` or a root user's token on `member`.
    pub fn new(token: Option<String>, member: std::sync::Arc<crate::member::Member>) -> Self {
        RootOrToken { configured: TokenAuthorizer::new(token), member }
    }
}

impl AdminAuthorizer for RootOrToken {
    fn is_admin(&self, bearer: &str) -> bool {
        if self.configured.is_admin(bearer) {
            return true;
        }
        let source = crate::auth::CallerSource { token: Some(bearer.to_owned()), ..Default::default() };
        let kv = self.member.kv().read();
        let store = kv.auth();
        // With auth off every caller passes the checks: only a real root token counts.
        store.enabled()
            && self.member.authenticator().caller(&source, store).is_ok_and(|who| store.check_admin(&who).is_ok())
    }
}
