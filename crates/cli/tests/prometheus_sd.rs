//! Prometheus (Debian's `prometheus`) discovers Meridian's registered instances through `http_sd_configs`
//! pointed at a member's `GET /v1/sd/prometheus`, scrapes them, keeps the dc, zone and tag labels through
//! relabelling, and drops a target once its instance is deregistered.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Kind, Server, free_port, poll_until};
use serde_json::Value;

/// How long Prometheus may take to discover, scrape or drop a target (it refreshes every second here).
const DEADLINE: Duration = Duration::from_secs(60);
/// How often its API is polled.
const EVERY: Duration = Duration::from_millis(250);

/// A Prometheus process, killed and reaped when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scrape target answering `/metrics` with one gauge, on its own thread, until the test process ends.
fn metrics_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the target");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            // Read the request head up to its blank line; the answer does not depend on it.
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = "demo_up 1\n";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    port
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-s", "--max-time", "10"]).args(args).output().expect("run curl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn start_prometheus(dir: &Path, sd_url: &str, port: u16) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: meridian\n    http_sd_configs:\n      - url: {sd_url}\n        refresh_interval: 1s\n    \
         relabel_configs:\n      - source_labels: [__meta_meridian_dc]\n        target_label: dc\n      \
         - source_labels: [__meta_meridian_service]\n        target_label: service\n      \
         - source_labels: [__meta_meridian_tags]\n        target_label: tags\n"
    );
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus (Debian's prometheus package)");
    Prometheus(child)
}

/// Prometheus's active targets.
fn active_targets(port: u16) -> Vec<Value> {
    let (ok, body) = curl(&[&format!("http://127.0.0.1:{port}/api/v1/targets?state=active")]);
    if !ok {
        return Vec::new();
    }
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    json["data"]["activeTargets"].as_array().cloned().unwrap_or_default()
}

#[test]
fn prometheus_discovers_scrapes_and_drops_registered_instances() {
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let _member = Server::start_with_args(Kind::Meridian, &["--listen-http", &base]);
    let target = metrics_target();
    let reg = format!(r#"{{"Name":"api","ID":"api-1","Address":"127.0.0.1","Port":{target},"Tags":["blue","v2"]}}"#);
    let (ok, _) = curl(&["-f", "-X", "PUT", "--data-binary", &reg, &format!("{base}/v1/agent/service/register")]);
    assert!(ok, "registration refused");
    let (_, me) = curl(&[&format!("{base}/v1/agent/self")]);
    let dc = serde_json::from_str::<Value>(&me).unwrap()["Config"]["Datacenter"].as_str().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let _prometheus = start_prometheus(dir.path(), &format!("{base}/v1/sd/prometheus"), prom_port);
    let scrape_url = format!("http://127.0.0.1:{target}/metrics");
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // Discovered and scraped: health "up" needs a successful scrape of the target.
    let mut found = None;
    let discovered = poll_until(DEADLINE, EVERY, || {
        found = active_targets(prom_port)
            .into_iter()
            .find(|t| t["scrapeUrl"] == scrape_url.as_str() && t["health"] == "up");
        found.is_some()
    });
    assert!(discovered, "target never discovered and up; prometheus log:\n{}", log());
    let up = found.unwrap();
    assert_eq!(up["labels"]["dc"], dc.as_str(), "{up}");
    assert_eq!(up["labels"]["service"], "api", "{up}");
    assert_eq!(up["labels"]["tags"], ",blue,v2,", "{up}");

    // Deregistered: Prometheus drops the target at its next refresh.
    let (ok, _) = curl(&["-f", "-X", "PUT", &format!("{base}/v1/agent/service/deregister/api-1")]);
    assert!(ok, "deregistration refused");
    let gone = poll_until(DEADLINE, EVERY, || {
        !active_targets(prom_port).iter().any(|t| t["scrapeUrl"] == scrape_url.as_str())
    });
    assert!(gone, "the deregistered target is still active; prometheus log:\n{}", log());
}
