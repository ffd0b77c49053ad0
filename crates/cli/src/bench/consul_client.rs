//! `health`, `register` (and the registrations of `blocking-wake`): clients of Meridian's Consul-compatible
//! HTTP API. Each client has one keep-alive HTTP/1.1 connection of its own (hyper-util's legacy client, as the
//! JSON gateway's [`super::json_client`]). A health answer counts when it is HTTP 200 with a JSON array; a
//! registration when it is HTTP 200. Anything else becomes an `Unknown` [`Status`] quoting the answer, so errors
//! are counted by the same kinds as gRPC's.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderMap};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tonic::Status;

use super::args::Plan;
use super::json_client::{Connector, quote, transport_error};

/// Largest answer body read (a health answer of one service with many instances stays far below).
const MAX_ANSWER: usize = 64 << 20;
/// The header that carries a blocking-capable answer's index.
pub const INDEX_HEADER: &str = "x-consul-index";

/// One endpoint of the HTTP API: its base URL and how to connect to it.
#[derive(Clone)]
pub struct ConsulEndpoint {
    base: String,
    connector: Connector,
}

impl ConsulEndpoint {
    /// The endpoint `endpoint` (`http://IP:PORT` or `https://IP:PORT` with the plan's TLS files).
    pub fn new(plan: &Plan, endpoint: &str) -> anyhow::Result<ConsulEndpoint> {
        let base = endpoint.trim_end_matches('/').to_owned();
        Ok(ConsulEndpoint { base, connector: Connector::for_endpoint(plan, endpoint)? })
    }
}

/// The name of service `n`: `svc-<n>`.
pub fn service_name(n: u64) -> String {
    format!("svc-{n}")
}

/// The path of a health query of `service` with `?passing`, blocking past `index` for `wait` when given.
pub fn health_path(service: &str, blocking: Option<(u64, Duration)>) -> String {
    match blocking {
        None => format!("/v1/health/service/{service}?passing"),
        Some((index, wait)) => {
            format!("/v1/health/service/{service}?passing&index={index}&wait={}ms", wait.as_millis())
        }
    }
}

/// The registration of operation `op` over `space` services: instance `i-<op>` of `svc-<op mod space>` on
/// 127.0.0.1, port 1 + op mod 65000, without checks. `space` is at least 1 (the plan checks it).
pub fn registration(op: u64, space: u64) -> String {
    registration_of(&service_name(op % space.max(1)), &format!("i-{op}"), 1 + op % 65_000)
}

/// A Consul registration body of instance `id` of `service` on 127.0.0.1:`port`. Names made by this tool need
/// no JSON escaping, but they are escaped anyway.
pub fn registration_of(service: &str, id: &str, port: u64) -> String {
    serde_json::json!({ "Name": service, "ID": id, "Address": "127.0.0.1", "Port": port }).to_string()
}

/// Judges a health answer: HTTP 200 with a JSON array; its `X-Consul-Index` (0 when missing or unreadable).
pub fn judge_health(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<u64, Status> {
    if status != StatusCode::OK {
        return Err(Status::unknown(format!("HTTP {}: {}", status.as_u16(), quote(body))));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(_)) => Ok(index_of(headers)),
        _ => Err(Status::unknown(format!("HTTP 200 without a JSON array: {}", quote(body)))),
    }
}

/// Judges a registration's answer: HTTP 200 (Consul's body is empty).
pub fn judge_register(status: StatusCode, body: &[u8]) -> Result<(), Status> {
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(Status::unknown(format!("HTTP {}: {}", status.as_u16(), quote(body))))
    }
}

/// The `X-Consul-Index` of an answer, 0 when it has none.
pub fn index_of(headers: &HeaderMap) -> u64 {
    headers.get(INDEX_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A client of the HTTP API on a keep-alive connection of its own.
pub struct ConsulClient {
    http: Client<Connector, Full<Bytes>>,
    base: String,
    register_uri: Uri,
    timeout: Duration,
}

impl ConsulClient {
    /// A client of `endpoint`; each request is bounded by `timeout`.
    pub fn new(endpoint: &ConsulEndpoint, timeout: Duration) -> anyhow::Result<ConsulClient> {
        let register_uri = format!("{}/v1/agent/service/register", endpoint.base)
            .parse::<Uri>()
            .with_context(|| format!("{}: not a URL", endpoint.base))?;
        // One request in flight per client: its pool holds the one connection, reopened if the server closes it.
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build(endpoint.connector.clone());
        Ok(ConsulClient { http, base: endpoint.base.clone(), register_uri, timeout })
    }

    /// `GET /v1/health/service/<service>?passing`: the answer's index.
    pub async fn health(&mut self, service: &str) -> Result<u64, Status> {
        let uri = format!("{}{}", self.base, health_path(service, None))
            .parse::<Uri>()
            .map_err(|e| Status::invalid_argument(format!("{service}: {e}")))?;
        let req = Request::get(uri).body(Full::default()).map_err(|e| Status::internal(e.to_string()))?;
        let (status, headers, body) = self.send(req).await?;
        judge_health(status, &headers, &body)
    }

    /// `PUT /v1/agent/service/register` of `body`.
    pub async fn register(&mut self, body: String) -> Result<(), Status> {
        let req = Request::builder()
            .method(Method::PUT)
            .uri(self.register_uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Status::internal(format!("building the request: {e}")))?;
        let (status, _, body) = self.send(req).await?;
        judge_register(status, &body)
    }

    /// Sends `req` and reads the whole answer, within the client's timeout.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, HeaderMap, Bytes), Status> {
        let exchange = async {
            let res = self.http.request(req).await.map_err(|e| Status::unavailable(transport_error(&e)))?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Status::unavailable(format!("reading the answer: {e}")))?;
            Ok((parts.status, parts.headers, body.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Status::deadline_exceeded(format!("no answer within {:?}", self.timeout)))?
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use tonic::Code;

    use super::*;

    #[test]
    fn registrations_spread_instances_over_the_key_space() {
        let r: Value = serde_json::from_str(&registration(10_007, 10_000)).unwrap();
        assert_eq!(r["Name"], "svc-7");
        assert_eq!(r["ID"], "i-10007");
        assert_eq!(r["Address"], "127.0.0.1");
        assert_eq!(r["Port"], 10_008);
        assert!(r.get("Check").is_none() && r.get("Checks").is_none());
        let r: Value = serde_json::from_str(&registration(65_000, 1)).unwrap();
        assert_eq!((r["Name"].as_str(), r["Port"].as_u64()), (Some("svc-0"), Some(1)));
        // 100,000 operations over 10,000 services: ten instances each.
        let per_service = (0..100_000u64).filter(|op| op % 10_000 == 42).count();
        assert_eq!(per_service, 10);
    }

    #[test]
    fn health_paths_ask_for_passing_instances_and_block_when_told() {
        assert_eq!(health_path("svc-3", None), "/v1/health/service/svc-3?passing");
        assert_eq!(
            health_path("web", Some((42, Duration::from_secs(60)))),
            "/v1/health/service/web?passing&index=42&wait=60000ms"
        );
        assert_eq!(service_name(9), "svc-9");
    }

    #[test]
    fn health_answers_count_only_as_200_with_an_array() {
        let mut h = HeaderMap::new();
        h.insert(INDEX_HEADER, HeaderValue::from_static("1234"));
        assert_eq!(judge_health(StatusCode::OK, &h, b"[]").unwrap(), 1234);
        assert_eq!(judge_health(StatusCode::OK, &HeaderMap::new(), br#"[{"Node":{}}]"#).unwrap(), 0);
        let e = judge_health(StatusCode::OK, &h, b"{}").unwrap_err();
        assert_eq!(e.code(), Code::Unknown);
        assert!(e.message().contains("without a JSON array"), "{e:?}");
        let e = judge_health(StatusCode::FORBIDDEN, &h, b"Permission denied\n").unwrap_err();
        assert_eq!(e.message(), "HTTP 403: Permission denied");
        h.insert(INDEX_HEADER, HeaderValue::from_static("x"));
        assert_eq!(index_of(&h), 0);
    }

    #[test]
    fn registrations_count_as_200() {
        assert!(judge_register(StatusCode::OK, b"").is_ok());
        let e = judge_register(StatusCode::BAD_REQUEST, b"Missing service name").unwrap_err();
        assert_eq!(e.message(), "HTTP 400: Missing service name");
    }
}
