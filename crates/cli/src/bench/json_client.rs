//! `--protocol json`: the `put`, `range` and `mixed` workloads through etcd's HTTP/JSON gateway instead of
//! gRPC. Each client has one keep-alive HTTP/1.1 connection of its own (hyper-util's legacy client, TLS with
//! the bench's `--cacert --cert --key` for `https://` endpoints) and POSTs `/v3/kv/put` and `/v3/kv/range` with
//! base64 keys and values, as etcd 3.4's gateway takes them. An answer counts only when it is HTTP 200 with a
//! JSON object carrying a response `header`; grpc-gateway's error body `{"error","message","code"}` becomes the
//! [`Status`] a gRPC call would have failed with, so errors are counted by the same kinds.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::{Code, Status};

use super::args::Plan;
use super::credentials::Credentials;
use super::stats::error_kind;
use crate::tls_client::{self, HTTP11};

/// Largest answer body read, as the gRPC clients' decoding limit.
const MAX_ANSWER: usize = 64 << 20;
/// How much of an answer that is not grpc-gateway's error body an error kind quotes.
const QUOTED: usize = 80;

/// One endpoint of the gateway: how to connect to it and the token its requests carry.
#[derive(Clone)]
pub struct JsonEndpoint {
    base: String,
    connector: Connector,
    token: Option<HeaderValue>,
}

impl JsonEndpoint {
    /// Checks that `endpoint` answers (`GET /version`) and logs in as the plan's user, if it has one (simple
    /// tokens belong to the member that issued them, so each endpoint gets its own).
    pub async fn connect(plan: &Plan, endpoint: &str) -> anyhow::Result<JsonEndpoint> {
        let base = endpoint.trim_end_matches('/').to_owned();
        let mut ep = JsonEndpoint { base, connector: Connector::for_endpoint(plan, endpoint)?, token: None };
        let mut probe = JsonClient::new(&ep, &[], plan.timeout)?;
        let failed = |s: Status| anyhow::anyhow!("{}", error_kind(&s));
        probe.version().await.map_err(failed).with_context(|| format!("connecting to {endpoint} (GET /version)"))?;
        if let Some(creds) = &plan.user {
            let token =
                probe.login(creds).await.map_err(failed).with_context(|| format!("logging in as {}", creds.name))?;
            ep.token = Some(token.parse().context("the server's token is not a valid header value")?);
        }
        Ok(ep)
    }
}

/// A client of the gateway on a keep-alive connection of its own.
pub struct JsonClient {
    http: Client<Connector, Full<Bytes>>,
    base: String,
    put_uri: Uri,
    range_uri: Uri,
    token: Option<HeaderValue>,
    /// The value every put writes, in base64.
    value: String,
    timeout: Duration,
}

impl JsonClient {
    /// A client of `endpoint` writing `value`; each request is bounded by `timeout`.
    pub fn new(endpoint: &JsonEndpoint, value: &[u8], timeout: Duration) -> anyhow::Result<JsonClient> {
        let uri = |path: &str| {
            format!("{}{path}", endpoint.base).parse::<Uri>().with_context(|| format!("{}: not a URL", endpoint.base))
        };
        // One request in flight per client: its pool holds the one connection, reopened if the server closes it.
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build(endpoint.connector.clone());
        Ok(JsonClient {
            http,
            base: endpoint.base.clone(),
            put_uri: uri("/v3/kv/put")?,
            range_uri: uri("/v3/kv/range")?,
            token: endpoint.token.clone(),
            value: STANDARD.encode(value),
            timeout,
        })
    }

    /// `POST /v3/kv/put` of `key` with the client's value.
    pub async fn put(&mut self, key: &[u8]) -> Result<(), Status> {
        // Base64 needs no JSON escaping, so the body is written directly.
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, STANDARD.encode(key), self.value);
        self.call(self.put_uri.clone(), body).await.map(drop)
    }

    /// `POST /v3/kv/range` of `key`, serializable or linearizable.
    pub async fn range(&mut self, key: &[u8], serializable: bool) -> Result<(), Status> {
        let key = STANDARD.encode(key);
        let body = if serializable {
            format!(r#"{{"key":"{key}","serializable":true}}"#)
        } else {
            format!(r#"{{"key":"{key}"}}"#)
        };
        self.call(self.range_uri.clone(), body).await.map(drop)
    }

    /// `POST /v3/auth/authenticate`: the token.
    async fn login(&mut self, creds: &Credentials) -> Result<String, Status> {
        let body = serde_json::json!({ "name": creds.name, "password": creds.password }).to_string();
        let uri = format!("{}/v3/auth/authenticate", self.base)
            .parse::<Uri>()
            .map_err(|e| Status::invalid_argument(format!("{}: {e}", self.base)))?;
        let answer = self.call(uri, body).await?;
        match answer.get("token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => Ok(token.to_owned()),
            _ => Err(Status::unauthenticated("the authenticate answer has no token (is auth enabled?)")),
        }
    }

    /// `GET /version`: the endpoint serves the gateway.
    async fn version(&mut self) -> Result<(), Status> {
        let uri = format!("{}/version", self.base)
            .parse::<Uri>()
            .map_err(|e| Status::invalid_argument(format!("{}: {e}", self.base)))?;
        let req = Request::get(uri).body(Full::default()).map_err(|e| Status::internal(e.to_string()))?;
        let (status, body) = self.send(req).await?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(v)) if status == StatusCode::OK && v.contains_key("etcdserver") => Ok(()),
            _ => Err(Status::unavailable(format!("not etcd's gateway: HTTP {status}: {}", quote(&body)))),
        }
    }

    /// POSTs `body` to `uri` and checks the answer: the JSON object of a 200, or the error it reports.
    async fn call(&mut self, uri: Uri, body: String) -> Result<serde_json::Map<String, Value>, Status> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Status::internal(format!("building the request: {e}")))?;
        if let Some(token) = &self.token {
            req.headers_mut().insert(AUTHORIZATION, token.clone());
        }
        let (status, body) = self.send(req).await?;
        answer(status, &body)
    }

    /// Sends `req` and reads the whole answer, within the client's timeout.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), Status> {
        let exchange = async {
            let res = self.http.request(req).await.map_err(|e| Status::unavailable(transport_error(&e)))?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Status::unavailable(format!("reading the answer: {e}")))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Status::deadline_exceeded(format!("no answer within {:?}", self.timeout)))?
    }
}

/// The answer `body` with `status`: a 200's JSON object (with the response header every KV and auth answer
/// has), or the [`Status`] of grpc-gateway's error body, or an `Unknown` quoting what came instead.
fn answer(status: StatusCode, body: &[u8]) -> Result<serde_json::Map<String, Value>, Status> {
    let parsed = serde_json::from_slice::<Value>(body);
    if status == StatusCode::OK {
        return match parsed {
            Ok(Value::Object(map)) if map.get("header").is_some_and(Value::is_object) => Ok(map),
            _ => Err(Status::unknown(format!("HTTP 200 without an etcd answer: {}", quote(body)))),
        };
    }
    if let Ok(Value::Object(map)) = &parsed {
        let code = map.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok());
        let message = map.get("message").or_else(|| map.get("error")).and_then(Value::as_str);
        if let (Some(code), Some(message)) = (code, message) {
            return Err(Status::new(Code::from_i32(code), message));
        }
    }
    Err(Status::unknown(format!("HTTP {}: {}", status.as_u16(), quote(body))))
}

/// The start of `body` as text, for an error kind.
pub(super) fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED)]);
    let text = text.trim();
    if body.len() > QUOTED { format!("{text}…") } else { text.to_owned() }
}

/// A transport error with its causes (hyper's own message is only "client error (Connect)").
pub(super) fn transport_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Opens a client's connection: TCP with no delay, then TLS offering HTTP/1.1 for `https://`.
#[derive(Clone)]
pub(super) struct Connector {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connector {
    /// The connector of `endpoint`: TLS offering HTTP/1.1 with the plan's files for `https://`, plain TCP else.
    pub(super) fn for_endpoint(plan: &Plan, endpoint: &str) -> anyhow::Result<Connector> {
        let tls = if endpoint.starts_with("https://") {
            let files = plan.tls.as_ref();
            let files =
                files.with_context(|| format!("{endpoint} is https://: give --cacert (and --cert/--key if needed)"))?;
            Some(files.config(&[HTTP11])?)
        } else {
            None
        };
        Ok(Connector { tls })
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = anyhow::Error;
    type Future = Pin<Box<dyn Future<Output = anyhow::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let Some(authority) = uri.authority().map(|a| a.as_str().to_owned()) else { bail!("{uri}: no host:port") };
            let stream = match tls {
                Some(config) => {
                    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                    Stream::Tls(Box::new(tls_client::connect(&authority, host, config).await?))
                }
                None => {
                    let tcp =
                        TcpStream::connect(&authority).await.with_context(|| format!("connecting to {authority}"))?;
                    let _ = tcp.set_nodelay(true);
                    Stream::Plain(tcp)
                }
            };
            Ok(TokioIo::new(stream))
        })
    }
}

/// A client connection, plain or TLS.
pub enum Stream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_and_error_bodies_become_statuses() {
        let ok = br#"{"header":{"cluster_id":"1","revision":"5"}}"#;
        assert!(answer(StatusCode::OK, ok).is_ok());
        let e = answer(StatusCode::OK, b"{}").unwrap_err();
        assert_eq!(e.code(), Code::Unknown);
        let e = answer(StatusCode::OK, b"<html>").unwrap_err();
        assert!(e.message().contains("<html>"), "{e:?}");
        let body = br#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#;
        let e = answer(StatusCode::SERVICE_UNAVAILABLE, body).unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::Unavailable, "etcdserver: no leader"));
        let e = answer(StatusCode::NOT_FOUND, b"Not Found\n").unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::Unknown, "HTTP 404: Not Found"));
        let long = vec![b'x'; 500];
        assert!(answer(StatusCode::BAD_GATEWAY, &long).unwrap_err().message().ends_with('…'));
    }
}
