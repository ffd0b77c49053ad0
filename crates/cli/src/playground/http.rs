//! A minimal HTTP/1.1 GET for the members' admin `/status`, on a fresh loopback connection each time. The
//! playground needs nothing more, so no HTTP client crate.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use meridian_server::admin::StatusReport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted, far above any status report.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// `GET path` on `addr` within `timeout`; returns the body of a 200 answer.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<String> {
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw).await?;
        let text = String::from_utf8(raw).context("response is not UTF-8")?;
        let (head, body) = text.split_once("\r\n\r\n").context("response without a header end")?;
        let code = head.split_whitespace().nth(1).unwrap_or("");
        if code != "200" {
            bail!("{addr}{path}: HTTP {code}");
        }
        Ok(body.to_owned())
    })
    .await
    .with_context(|| format!("{addr}{path}: no answer within {timeout:?}"))?
}

/// A member's `/status`.
pub async fn status(addr: SocketAddr, timeout: Duration) -> anyhow::Result<StatusReport> {
    let body = get(addr, "/status", timeout).await?;
    serde_json::from_str(&body).with_context(|| format!("{addr}/status: unexpected body"))
}
