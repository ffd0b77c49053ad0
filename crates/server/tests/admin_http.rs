//! The admin API over real HTTP: a member started with `listen_admin` on 127.0.0.1 port 0 answers `/status`
//! and `/health`, and stops serving it when the member stops.

mod common;

use std::time::{Duration, Instant};

use meridian_server::ServerConfig;
use meridian_server::admin::StatusReport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a fresh connection; returns the status code and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_owned()))
}

#[tokio::test]
async fn status_and_health_over_real_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listen_admin: Some("http://127.0.0.1:0".into()),
        enable_fault_injection: true,
        ..common::solo(dir.path())
    };
    let server = meridian_server::start(config).await.unwrap();
    let addr = server.admin_addr.expect("admin listener bound");
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    // A single member elects itself; poll /health until it says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = http(addr, "GET", "/health", "").await.unwrap();
        if code == 200 {
            assert_eq!(body, r#"{"health":"true","reason":""}"#);
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(Instant::now() < deadline, "no leader within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (code, body) = http(addr, "GET", "/status", "").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let status: StatusReport = serde_json::from_str(&body).unwrap();
    assert_eq!(status.name, "solo");
    assert!(status.is_leader);
    assert_eq!(status.leader.map(|l| l.name), Some("solo".to_owned()));
    assert_eq!(status.id, format!("{:x}", server.member.id().0));

    // Fault injection was enabled, so /faults exists and validates its input.
    let (code, body) = http(addr, "PUT", "/faults", r#"{"isolated_dcs": ["dc-x"]}"#).await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(server.faults.get().isolated_dcs.iter().any(|d| d.0 == "dc-x"));
    let (code, body) = http(addr, "PUT", "/faults", "[1,2").await.unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("invalid fault description"), "{body}");

    server.stop().await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the admin listener closes with the member");
}

#[tokio::test]
async fn admin_port_in_use_fails_start_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        listen_admin: Some(format!("http://{}", taken.local_addr().unwrap())),
        ..Default::default()
    };
    let err = meridian_server::start(config).await.err().expect("start must fail");
    assert!(err.to_string().contains("admin"), "{err}");
}
