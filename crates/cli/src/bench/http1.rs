//! A minimal HTTP/1.1 GET over a plain TCP connection, for `blocking-wake`: its clients must know when their
//! blocking query has been *written* (to start the change only once every query is parked) and when the
//! answer's head *arrives*, which a pooled client does not tell. One request at a time per connection,
//! keep-alive; bodies framed by `Content-Length` or chunked, or by the connection's end. Every read and write is
//! bounded by the caller's deadline.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

/// Largest answer head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Largest answer body accepted.
const MAX_BODY: usize = 64 << 20;

/// An answer: its status, `X-Consul-Index` (0 when missing), body, and when its head arrived.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The `X-Consul-Index` header, 0 when missing.
    pub index: u64,
    /// The whole body.
    pub body: Vec<u8>,
    /// When the head had arrived.
    pub arrived: Instant,
}

/// How an answer's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// After this many bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
    /// When the server closes the connection.
    Close,
}

/// An answer's head, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// HTTP status code.
    pub status: u16,
    /// The `X-Consul-Index` header, 0 when missing.
    pub index: u64,
    /// How the body ends.
    pub framing: Framing,
    /// Whether the server closes the connection after this answer.
    pub close: bool,
}

/// The bytes of `GET path` to `host` (the `Host` header's `IP:PORT`).
pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: meridian-bench\r\n\r\n")
        .into_bytes()
}

/// Parses an answer's head (status line and headers, without the blank line that ends them).
pub fn parse_head(head: &[u8]) -> anyhow::Result<Head> {
    let text = std::str::from_utf8(head).context("the answer's head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    ensure!(version.starts_with("HTTP/1."), "not an HTTP/1 answer: {status_line:?}");
    let status: u16 =
        parts.next().unwrap_or_default().parse().with_context(|| format!("status line {status_line:?}"))?;
    let (mut index, mut length, mut chunked, mut close) = (0, None, false, version == "HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { bail!("bad header line {line:?}") };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "x-consul-index" => index = value.parse().unwrap_or(0),
            "content-length" => length = Some(value.parse::<usize>().with_context(|| format!("length {value:?}"))?),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) if status == 204 || status == 304 || status / 100 == 1 => Framing::Length(0),
        (false, None) => Framing::Close,
    };
    Ok(Head { status, index, framing, close: close || framing == Framing::Close })
}

/// A connection of one client.
pub struct Conn {
    stream: TcpStream,
    host: String,
    /// Bytes read past the previous answer.
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `host` (`IP:PORT`) before `deadline`.
    pub async fn connect(host: &str, deadline: Instant) -> anyhow::Result<Conn> {
        let stream = timeout_at(deadline.into(), TcpStream::connect(host))
            .await
            .with_context(|| format!("connecting to {host} timed out"))?
            .with_context(|| format!("connecting to {host}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn { stream, host: host.to_owned(), buf: Vec::new() })
    }

    /// Writes `GET path` (returns once the request is in the socket).
    pub async fn send(&mut self, path: &str, deadline: Instant) -> anyhow::Result<()> {
        let req = get_request(&self.host, path);
        timeout_at(deadline.into(), self.stream.write_all(&req)).await.context("writing timed out")??;
        Ok(())
    }

    /// Reads the answer to the request sent; `Ok((answer, reusable))`.
    pub async fn receive(&mut self, deadline: Instant) -> anyhow::Result<(Answer, bool)> {
        timeout_at(deadline.into(), self.read_answer()).await.context("no answer in time")?
    }

    async fn read_answer(&mut self) -> anyhow::Result<(Answer, bool)> {
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            ensure!(self.buf.len() <= MAX_HEAD, "the answer's head is larger than {MAX_HEAD} bytes");
            ensure!(self.fill().await? > 0, "the connection closed before an answer");
        };
        let arrived = Instant::now();
        let head = parse_head(&self.buf[..end])?;
        self.buf.drain(..end + 4);
        let body = match head.framing {
            Framing::Length(n) => self.take(n).await?,
            Framing::Chunked => self.chunked().await?,
            Framing::Close => {
                while self.fill().await? > 0 {
                    ensure!(self.buf.len() <= MAX_BODY, "the body is larger than {MAX_BODY} bytes");
                }
                std::mem::take(&mut self.buf)
            }
        };
        Ok((Answer { status: head.status, index: head.index, body, arrived }, !head.close))
    }

    /// Reads more bytes into the buffer; how many (0 at the connection's end).
    async fn fill(&mut self) -> anyhow::Result<usize> {
        let mut chunk = [0u8; 16 << 10];
        let n = self.stream.read(&mut chunk).await.context("reading the answer")?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Takes exactly `n` bytes.
    async fn take(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        ensure!(n <= MAX_BODY, "the body is larger than {MAX_BODY} bytes");
        while self.buf.len() < n {
            ensure!(self.fill().await? > 0, "the connection closed inside a body");
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes a line ending in CRLF (without it).
    async fn line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(at) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return Ok(line);
            }
            ensure!(self.buf.len() <= MAX_HEAD, "a chunk line is too long");
            ensure!(self.fill().await? > 0, "the connection closed inside a chunked body");
        }
    }

    /// Takes a chunked body, decoded (trailers skipped).
    async fn chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).with_context(|| format!("chunk size {size:?}"))?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            ensure!(body.len() + size <= MAX_BODY, "the body is larger than {MAX_BODY} bytes");
            body.extend(self.take(size).await?);
            ensure!(self.line().await?.is_empty(), "a chunk does not end in CRLF");
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_plain_gets_with_a_host() {
        let req = String::from_utf8(get_request("127.0.0.1:8500", "/v1/health/service/a?passing")).unwrap();
        assert!(req.starts_with("GET /v1/health/service/a?passing HTTP/1.1\r\nHost: 127.0.0.1:8500\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn heads_give_status_index_and_framing() {
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 77\r\ncontent-length: 2")
                .unwrap();
        assert_eq!(h, Head { status: 200, index: 77, framing: Framing::Length(2), close: false });
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close").unwrap();
        assert_eq!((h.framing, h.close, h.index), (Framing::Chunked, true, 0));
        let h = parse_head(b"HTTP/1.1 500 Internal Server Error").unwrap();
        assert_eq!((h.status, h.framing, h.close), (500, Framing::Close, true));
        assert!(parse_head(b"HTTP/1.1 204 No Content").unwrap().framing == Framing::Length(0));
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x").is_err());
    }
}
