//! The HTTP probe, in the manner of the failover hooks' webhook client: one HTTP/1.1 exchange on a fresh
//! connection (hyper's client connection, no pool), dialled through the member's network. The check's method,
//! headers and body are sent; at most `output_max` bytes of the answer's body are read (the connection is then
//! dropped); a redirect is followed (at most [`MAX_REDIRECTS`], to `http://` URLs) only when the check asks, else
//! it is judged as the 3xx it is. `https://` URLs are probed over TLS ([`super::tls`]): verified against the
//! system's CAs and the URL's host (or `TLSServerName`), or not verified with `TLSSkipVerify`.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use meridian_registry::Outcome;
use meridian_registry::check::HttpCheck;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::tls;
use crate::net::Network;

/// The most redirects followed for a check that asks for them.
pub const MAX_REDIRECTS: usize = 10;

/// Probes `check` once.
pub async fn probe(net: &Arc<dyn Network>, check: &HttpCheck) -> (Outcome, String) {
    let mut url = check.url.clone();
    for hop in 0..=MAX_REDIRECTS {
        let answer = match exchange(net, check, &url).await {
            Ok(answer) => answer,
            Err(e) => return check.judge_error(&e),
        };
        let next = answer.location.as_deref().and_then(|l| redirect_target(&url, l));
        match next {
            Some(next) if check.follow_redirects && (300..400).contains(&answer.status) && hop < MAX_REDIRECTS => {
                url = next;
            }
            _ => return check.judge(answer.status, &answer.body),
        }
    }
    check.judge_error("too many redirects")
}

/// What came back: the status, a redirect's `Location`, the first bytes of the body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// Aborts the connection's task when the exchange ends or is dropped (a probe that timed out).
struct ConnTask(JoinHandle<()>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request to `url` with the check's method, headers and body.
async fn exchange(net: &Arc<dyn Network>, check: &HttpCheck, url: &str) -> Result<Answer, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("only http:// and https:// URLs are probed".into()),
    };
    let authority = uri.authority().ok_or("the URL has no host")?.clone();
    let dial = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:{}", authority.as_str(), if secure { 443 } else { 80 }),
    };
    let conn = net.connect(dial).await.map_err(|e| format!("connect: {e}"))?;
    if !secure {
        return send(conn, check, &uri).await;
    }
    let config = tls::client_config(check.tls_skip_verify)?;
    let name = tls::server_name(authority.host(), check.tls_server_name.as_deref())?;
    let conn = TlsConnector::from(config).connect(name, conn).await.map_err(|e| format!("TLS: {e}"))?;
    send(conn, check, &uri).await
}

/// The exchange itself, over a plain or TLS connection.
async fn send<T>(io: T, check: &HttpCheck, uri: &Uri) -> Result<Answer, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let authority = uri.authority().ok_or("the URL has no host")?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    let _task = ConnTask(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let method = Method::from_bytes(check.method.as_bytes()).map_err(|e| format!("bad method: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, authority.as_str())
        .header(USER_AGENT, concat!("meridian/", env!("CARGO_PKG_VERSION"), " health check"));
    for (name, values) in &check.headers {
        for value in values {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let body = Full::new(Bytes::from(check.body.clone().unwrap_or_default()));
    let request = request.body(body).map_err(|e| format!("building the request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while kept.len() < check.output_max {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    kept.extend_from_slice(&data);
                }
            }
            // A body cut short still judges by its status; what came is kept.
            Some(Err(_)) | None => break,
        }
    }
    kept.truncate(check.output_max);
    Ok(Answer { status, location, body: kept })
}

/// Where a redirect from `from` to `location` leads: an absolute `http://` URL, or a path on the same host;
/// `None` for anything else (it is then judged as the 3xx it is).
fn redirect_target(from: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    if !location.starts_with('/') || location.starts_with("//") {
        return None;
    }
    let uri: Uri = from.parse().ok()?;
    Some(format!("{}://{}{location}", uri.scheme_str()?, uri.authority()?))
}

#[cfg(test)]
mod tests {
    use super::redirect_target;

    #[test]
    fn redirects_resolve_to_absolute_urls_or_paths_on_the_same_host() {
        let from = "http://10.0.0.1:8080/health?x=1";
        assert_eq!(redirect_target(from, "/ok").as_deref(), Some("http://10.0.0.1:8080/ok"));
        assert_eq!(redirect_target(from, "http://elsewhere/").as_deref(), Some("http://elsewhere/"));
        assert_eq!(redirect_target(from, "//elsewhere/"), None);
        assert_eq!(redirect_target(from, "relative"), None);
    }
}
