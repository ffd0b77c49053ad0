//! Client channels that speak as a user, the way etcd's clients do: the first request on a channel logs the
//! user in (`Auth.Authenticate`) and every request carries the token in the `token` metadata. Simple tokens live
//! only in the memory of the member that issued them, so a member that restarted answers "invalid auth token";
//! then (and on "revision of auth store is old", which also means nothing was applied) the channel logs in again
//! and resends a unary request, a bounded number of times. While authentication is not enabled yet, requests go
//! without a token.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use meridian_proto::etcdserverpb::AuthenticateRequest;
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use parking_lot::Mutex;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Service, ServiceExt};

/// The administrator every infrastructure client of the simulation speaks as.
pub const ROOT: &str = "root";
/// Root's password.
pub const ROOT_PASSWORD: &str = "root-pw";
/// A refusal that means the request had no effect and a fresh login may succeed.
const RETRYABLE: [&str; 2] = ["etcdserver: invalid auth token", "etcdserver: revision of auth store is old"];
/// The answer to a login while authentication is off.
const NOT_ENABLED: &str = "etcdserver: authentication is not enabled";
/// Sends of one unary request at most (the first and the resends after fresh logins).
const ATTEMPTS: usize = 3;
/// Streaming calls: their request bodies cannot be buffered, so they are never resent.
const STREAMING: [&str; 2] = ["/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl Credentials {
    /// The root user's.
    pub fn root() -> Self {
        Credentials { user: ROOT.to_owned(), password: ROOT_PASSWORD.to_owned() }
    }
}

/// A channel to one member that authenticates as one user (see the module docs).
#[derive(Clone)]
pub struct SimChannel {
    inner: Channel,
    creds: Arc<Credentials>,
    token: Arc<Mutex<Option<String>>>,
}

impl SimChannel {
    /// Requests on `inner` as the user of `creds`.
    pub fn new(inner: Channel, creds: Credentials) -> Self {
        SimChannel { inner, creds: Arc::new(creds), token: Arc::default() }
    }

    /// The user this channel speaks as.
    pub fn user(&self) -> &str {
        &self.creds.user
    }

    /// Forgets the token, so the next request logs in again (a watch create refused it in its answer).
    pub fn forget_token(&self) {
        *self.token.lock() = None;
    }

    /// The token to send, logging in when there is none; `Ok(None)` while authentication is off.
    async fn token(&self) -> Result<Option<String>, tonic::Status> {
        if let Some(t) = self.token.lock().clone() {
            return Ok(Some(t));
        }
        let req = AuthenticateRequest { name: self.creds.user.clone(), password: self.creds.password.clone() };
        match AuthClient::new(self.inner.clone()).authenticate(req).await {
            Ok(r) => {
                let token = r.into_inner().token;
                *self.token.lock() = Some(token.clone());
                Ok(Some(token))
            }
            Err(s) if s.message() == NOT_ENABLED => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// Whether `resp` refused the token (then it is forgotten).
    fn refused(&self, resp: &http::Response<Body>) -> bool {
        let refused = tonic::Status::from_header_map(resp.headers())
            .is_some_and(|s| s.code() != tonic::Code::Ok && refuses_token(s.message()));
        if refused {
            *self.token.lock() = None;
        }
        refused
    }

    async fn send(self, mut ready: Channel, req: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        if STREAMING.contains(&req.uri().path()) {
            let mut req = req;
            match self.token().await {
                Ok(token) => set_token(req.headers_mut(), token.as_deref()),
                Err(status) => return Ok(status.into_http()),
            }
            let resp = ready.call(req).await?;
            self.refused(&resp);
            return Ok(resp);
        }
        let (parts, body) = req.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let mut channel = Some(ready);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = match self.token().await {
                Ok(token) => token,
                Err(status) => return Ok(status.into_http()),
            };
            let mut req = http::Request::new(Body::new(Full::new(bytes.clone())));
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = parts.uri.clone();
            *req.version_mut() = parts.version;
            *req.headers_mut() = parts.headers.clone();
            set_token(req.headers_mut(), token.as_deref());
            let mut svc = match channel.take() {
                Some(svc) => svc,
                None => {
                    let mut svc = self.inner.clone();
                    svc.ready().await?;
                    svc
                }
            };
            let resp = svc.call(req).await?;
            if !self.refused(&resp) || attempt >= ATTEMPTS {
                return Ok(resp);
            }
        }
    }
}

/// Whether `message` refuses a request's token (or its auth revision): log in again and retry.
pub fn refuses_token(message: &str) -> bool {
    RETRYABLE.contains(&message)
}

fn set_token(headers: &mut http::HeaderMap, token: Option<&str>) {
    if let Some(value) = token.and_then(|t| http::HeaderValue::from_str(t).ok()) {
        headers.insert("token", value);
    }
}

impl Service<http::Request<Body>> for SimChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The ready channel is the one `poll_ready` polled; this handle keeps a fresh clone.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let this = self.clone();
        Box::pin(this.send(ready, req))
    }
}
