//! A minimal HTTP/1.1 client for the members' admin API, on a fresh connection each time, over TLS for an
//! `https://` admin URL (with the CA given) and with a bearer token when one is set: the playground's `/status`
//! polls, `meridian status` and `meridian failover`. The CLI needs nothing more, so no HTTP client crate.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use meridian_server::admin::StatusReport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the CLI reaches admin APIs: TLS (for `https://` admin URLs) and a bearer token, each optional.
#[derive(Clone, Default)]
pub struct AdminClient {
    /// TLS configuration (trusting the CA of the members' certificates).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `Authorization: Bearer` token.
    pub token: Option<String>,
}

/// Largest response accepted, far above any status report.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// An admin API's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub code: u16,
    /// The body.
    pub body: String,
}

/// `method path` with `body` (JSON) on `addr` within `timeout` (TLS when `https`); returns the answer, whatever
/// its status. Errors are a connection or protocol failure.
pub async fn request(
    client: &AdminClient,
    https: bool,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    tokio::time::timeout(timeout, async {
        let auth = client.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let raw = if https {
            let config = client.tls.clone().with_context(|| format!("{addr} is https://: give --cacert"))?;
            let stream = crate::tls_client::connect(&addr.to_string(), &addr.ip().to_string(), config).await?;
            exchange(stream, &req).await?
        } else {
            exchange(TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?, &req).await?
        };
        let text = String::from_utf8(raw).context("response is not UTF-8")?;
        let (head, body) = text.split_once("\r\n\r\n").context("response without a header end")?;
        let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("response without a status")?;
        Ok(Answer { code, body: body.to_owned() })
    })
    .await
    .with_context(|| format!("{addr}{path}: no answer within {timeout:?}"))?
}

/// `GET path` on `addr` within `timeout`; returns the body of a 200 answer.
pub async fn get(
    client: &AdminClient,
    https: bool,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let answer = request(client, https, addr, "GET", path, "", timeout).await?;
    if answer.code != 200 {
        bail!("{addr}{path}: HTTP {}", answer.code);
    }
    Ok(answer.body)
}

/// A URL given with `flag` (`http://HOST:PORT` or `https://HOST:PORT`) as an address to dial, and whether it is
/// https://.
pub fn parse_url(flag: &str, url: &str) -> anyhow::Result<(SocketAddr, bool)> {
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => bail!("{flag} {url}: expected http://HOST:PORT or https://HOST:PORT"),
    };
    let authority = rest.trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("{flag} {url}"))?
        .next()
        .ok_or_else(|| anyhow!("{flag} {url}: no address"))?;
    Ok((addr, https))
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends `req` and reads the whole answer (the server closes: `Connection: close`).
async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, req: &str) -> anyhow::Result<Vec<u8>> {
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    let read = (&mut stream).take(MAX_RESPONSE_BYTES).read_to_end(&mut raw).await;
    // A TLS peer closing without close_notify after the whole answer is no error for a Connection: close reply.
    if let Err(e) = read
        && raw.is_empty()
    {
        return Err(e.into());
    }
    Ok(raw)
}

/// A member's `/status`.
pub async fn status(
    client: &AdminClient,
    https: bool,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<StatusReport> {
    let body = get(client, https, addr, "/status", timeout).await?;
    serde_json::from_str(&body).with_context(|| format!("{addr}/status: unexpected body"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::tls_client::{ClientTlsFiles, HTTP11};

    /// A one-shot HTTPS server on loopback answering `body`; returns its address and the request it got.
    async fn https_server(body: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>, tempfile::TempDir) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(config)).accept(tcp).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tls.read(&mut buf).await.unwrap();
            let answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            tls.write_all(answer.as_bytes()).await.unwrap();
            tls.shutdown().await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, task, dir)
    }

    #[test]
    fn urls_and_names_become_addresses_and_paths() {
        assert_eq!(parse_url("--admin", "http://127.0.0.1:2381").unwrap(), ("127.0.0.1:2381".parse().unwrap(), false));
        assert_eq!(parse_url("--http", "https://127.0.0.2:9/").unwrap(), ("127.0.0.2:9".parse().unwrap(), true));
        let bare = parse_url("--admin", "127.0.0.1:2381").unwrap_err().to_string();
        assert!(bare.contains("--admin 127.0.0.1:2381: expected http://"), "{bare}");
        assert_eq!(segment("orders-db.v2_x~"), "orders-db.v2_x~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[tokio::test]
    async fn status_polls_work_over_https_with_the_ca_and_send_the_token() {
        let (addr, request, dir) = https_server("{\"ok\":true}").await;
        let tls = ClientTlsFiles { cacert: dir.path().join("ca.crt"), identity: None }.config(&[HTTP11]).unwrap();
        let client = AdminClient { tls: Some(tls), token: Some("tok".into()) };
        let body = get(&client, true, addr, "/status", Duration::from_secs(5)).await.unwrap();
        assert_eq!(body, "{\"ok\":true}");
        assert!(request.await.unwrap().contains("Authorization: Bearer tok\r\n"));
        let no_ca = get(&AdminClient::default(), true, addr, "/status", Duration::from_secs(5)).await.unwrap_err();
        assert!(no_ca.to_string().contains("--cacert"), "{no_ca}");
    }
}
