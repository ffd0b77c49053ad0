//! The playground's discovery demo: a `web` service in every datacenter. The playground itself serves each
//! instance (a small HTTP server on the datacenter's first member address, port 8080: `GET /` names the
//! datacenter, `GET /health` answers 200 while healthy and 500 after `POST /fail`, until `POST /recover`) and
//! registers it through that member's Consul-compatible HTTP API with a real HTTP check every second. So
//! `dig` and `curl` against any member show the nearest healthy `web`, and failing one datacenter's instance
//! shows the answers move to the next datacenter.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::admin_http::{self, AdminClient};

/// The port of the demo instances.
pub const WEB_PORT: u16 = 8080;
/// The port of each member's Consul-compatible HTTP API in the playground.
pub const HTTP_PORT: u16 = 8500;
/// The port of each member's DNS server in the playground.
pub const DNS_PORT: u16 = 8600;
/// How long one registration or health request may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// One demo instance: where it listens, its datacenter, and the HTTP API it registers with.
pub struct WebInstance {
    /// Its address.
    pub addr: SocketAddr,
    /// Its datacenter.
    pub dc: String,
    /// The member whose HTTP API it registers with.
    pub http: SocketAddr,
}

impl WebInstance {
    /// Serves the instance of datacenter `dc` on `addr` (the playground's: its first member's address, port
    /// [`WEB_PORT`]), to be registered through the HTTP API at `http`.
    pub async fn serve(addr: SocketAddr, http: SocketAddr, dc: &str) -> anyhow::Result<WebInstance> {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("demo web on {addr}"))?;
        let addr = listener.local_addr()?;
        let healthy = Arc::new(AtomicBool::new(true));
        let (flag, name) = (healthy, dc.to_owned());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (flag, name) = (flag.clone(), name.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, flag.clone(), name.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(WebInstance { addr, dc: dc.to_owned(), http })
    }

    /// The registration body of this instance, with its HTTP check.
    pub fn registration(&self) -> serde_json::Value {
        serde_json::json!({
            "Name": "web",
            "ID": format!("web-{}", self.dc),
            "Address": self.addr.ip().to_string(),
            "Port": self.addr.port(),
            "Tags": ["demo"],
            "Check": {
                "HTTP": format!("http://{}/health", self.addr),
                "Interval": "1s",
                "Timeout": "1s",
            },
        })
    }

    /// Registers the instance through its member's HTTP API.
    pub async fn register(&self, client: &AdminClient) -> anyhow::Result<()> {
        let body = self.registration().to_string();
        let answer =
            admin_http::request(client, false, self.http, "PUT", "/v1/agent/service/register", &body, TIMEOUT).await?;
        if answer.code != 200 {
            bail!("registering web-{} at {}: HTTP {} {}", self.dc, self.http, answer.code, answer.body.trim());
        }
        Ok(())
    }
}

async fn answer(
    req: Request<Incoming>,
    healthy: Arc<AtomicBool>,
    dc: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (code, text) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/health") if healthy.load(Ordering::Relaxed) => (StatusCode::OK, "ok\n".to_owned()),
        ("GET", "/health") => (StatusCode::INTERNAL_SERVER_ERROR, "failing (POST /recover to heal)\n".to_owned()),
        ("POST", "/fail") => {
            healthy.store(false, Ordering::Relaxed);
            (StatusCode::OK, format!("web in {dc} now fails its health check\n"))
        }
        ("POST", "/recover") => {
            healthy.store(true, Ordering::Relaxed);
            (StatusCode::OK, format!("web in {dc} is healthy again\n"))
        }
        ("GET", "/") => (StatusCode::OK, format!("hello from web in {dc}\n")),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = code;
    Ok(resp)
}

/// The datacenters whose `web` instance `member`'s HTTP API lists as passing, in its answer's order (nearest
/// first).
pub async fn passing_dcs(client: &AdminClient, member: SocketAddr) -> anyhow::Result<Vec<String>> {
    let body = admin_http::get(client, false, member, "/v1/health/service/web?passing", TIMEOUT).await?;
    let entries: serde_json::Value = serde_json::from_str(&body).context("/v1/health/service/web: not JSON")?;
    Ok(entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["Node"]["Datacenter"].as_str().map(str::to_owned))
        .collect())
}

/// The banner lines that show discovery, for members whose first address is `ip`.
pub fn banner(ip: IpAddr, dcs: &[String]) -> String {
    format!(
        "service discovery (a demo `web` in {}, each with an HTTP check every second):\n  \
         dig @{ip} -p {DNS_PORT} web.service.meridian SRV\n  \
         curl -s '{ip}:{HTTP_PORT}/v1/health/service/web?passing'\n  \
         meridian service query web --http http://{ip}:{HTTP_PORT}\n  \
         fail dc-a's instance and watch the answers move: curl -X POST {ip}:{WEB_PORT}/fail (POST /recover heals)\n",
        dcs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_instance_fails_and_recovers_on_request() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let web = WebInstance::serve(any, any, "dc-x").await.unwrap();
        let client = AdminClient::default();
        let get = |path: &'static str| admin_http::request(&client, false, web.addr, "GET", path, "", TIMEOUT);
        assert_eq!(get("/health").await.unwrap().code, 200);
        assert!(get("/").await.unwrap().body.contains("dc-x"));
        admin_http::request(&client, false, web.addr, "POST", "/fail", "", TIMEOUT).await.unwrap();
        assert_eq!(get("/health").await.unwrap().code, 500);
        admin_http::request(&client, false, web.addr, "POST", "/recover", "", TIMEOUT).await.unwrap();
        assert_eq!(get("/health").await.unwrap().code, 200);
        let reg = web.registration();
        assert_eq!(reg["ID"], "web-dc-x");
        assert_eq!(reg["Check"]["HTTP"], format!("http://{}/health", web.addr));
    }
}
