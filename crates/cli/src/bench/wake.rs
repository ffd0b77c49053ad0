//! The `blocking-wake` workload: `--clients` blocking queries parked on one service, woken by one change.
//!
//! Each client has a plain HTTP/1.1 connection of its own ([`super::http1`]), to the endpoints round-robin.
//! A round: every client reads the index of `GET /v1/health/service/<svc>?passing`, then sends the blocking
//! query `?index=<i>&wait=<--wait>` and signals once it is written; when every client has (or `--timeout`
//! passed), and 200 ms more for the servers to take them in, one registration of a new instance of the service
//! goes to the first endpoint. Each query that then returns with a larger index is timed from the
//! registration's send and from its acknowledgement ([`super::wake_stats`]). The service is this run's own
//! (`bench-wake-<nonce>`), so nothing else wakes it. Every wait is bounded: the reads and the registration by
//! `--timeout`, a parked query by `--wait` plus `--timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use super::args::Plan;
use super::consul_client::{ConsulClient, ConsulEndpoint, health_path, registration_of};
use super::http1::{Answer, Conn};
use super::wake_stats::{Round, WakeReport, offset_micros};

/// How long the change waits after every query is written, for the servers to take them in.
const SETTLE: Duration = Duration::from_millis(200);
/// File descriptors the process needs besides one per client.
const SPARE_FDS: u64 = 64;

/// Runs `plan` (a `blocking-wake` plan) to the end.
pub async fn execute(plan: Plan) -> anyhow::Result<WakeReport> {
    check_fd_limit(plan.clients)?;
    let plan = Arc::new(plan);
    let hosts: Vec<String> = plan.endpoints.iter().map(|e| host_of(e)).collect::<anyhow::Result<_>>()?;
    let mut writer = ConsulClient::new(&ConsulEndpoint::new(&plan, &plan.endpoints[0])?, plan.timeout)?;
    let service = format!("bench-wake-{:x}", nonce());
    let mut conns: Vec<Option<Conn>> = (0..plan.clients).map(|_| None).collect();
    let mut rounds = Vec::new();
    for round in 0..plan.rounds {
        let (written_tx, mut written_rx) = mpsc::channel::<()>(plan.clients);
        let mut tasks = Vec::with_capacity(plan.clients);
        for (c, conn) in conns.iter_mut().enumerate() {
            let host = hosts[c % hosts.len()].clone();
            let (conn, service, plan, written) = (conn.take(), service.clone(), plan.clone(), written_tx.clone());
            tasks.push(tokio::spawn(async move { park(conn, &host, &service, &plan, written).await }));
        }
        drop(written_tx);
        // Every client writes its query, fails, or the timeout ends the wait.
        let deadline = tokio::time::Instant::now() + plan.timeout;
        let mut parked = 0;
        while parked < plan.clients {
            match tokio::time::timeout_at(deadline, written_rx.recv()).await {
                Ok(Some(())) => parked += 1,
                Ok(None) | Err(_) => break,
            }
        }
        tokio::time::sleep(SETTLE).await;
        let body = registration_of(&service, &format!("{service}-{round}"), 1 + round % 65_000);
        let sent = Instant::now();
        let registered = writer.register(body).await;
        let acked = Instant::now();
        if let Err(status) = registered {
            bail!("round {round}: the registration failed: {}", super::stats::error_kind(&status));
        }
        let mut r = Round { ack_micros: offset_micros(sent, acked), ..Round::default() };
        for (c, task) in tasks.into_iter().enumerate() {
            let (conn, outcome) = task.await.context("a client task failed")?;
            conns[c] = conn;
            match outcome {
                Ok(Parked { before, answer }) if answer.index > before => r.woken(sent, acked, answer.arrived),
                Ok(_) => r.missed += 1,
                Err(e) => r.errors.add(&format!("{e:#}"), 1),
            }
        }
        rounds.push(r);
    }
    Ok(WakeReport { clients: plan.clients, endpoints: plan.endpoints.clone(), rounds })
}

/// A parked query's outcome: the index it blocked on and its answer.
struct Parked {
    before: u64,
    answer: Answer,
}

/// One client's round: reads the index, parks the blocking query, signals `written`, waits for the answer.
/// Hands back its connection when it can be reused.
async fn park(
    conn: Option<Conn>,
    host: &str,
    service: &str,
    plan: &Plan,
    written: mpsc::Sender<()>,
) -> (Option<Conn>, anyhow::Result<Parked>) {
    let mut held = conn;
    let mut signaled = false;
    let outcome = async {
        let deadline = Instant::now() + plan.timeout;
        let conn = match held.take() {
            Some(conn) => held.insert(conn),
            None => held.insert(Conn::connect(host, deadline).await?),
        };
        conn.send(&health_path(service, None), deadline).await?;
        let (first, reusable) = conn.receive(deadline).await?;
        judge(&first)?;
        anyhow::ensure!(reusable, "the server closed the connection after the index read");
        conn.send(&health_path(service, Some((first.index, plan.wait))), deadline).await?;
        signaled = true;
        let _ = written.send(()).await;
        let (answer, reusable) = conn.receive(Instant::now() + plan.wait + plan.timeout).await?;
        judge(&answer)?;
        Ok((Parked { before: first.index, answer }, reusable))
    }
    .await;
    if !signaled {
        // A client that failed before parking is not waited for.
        let _ = written.send(()).await;
    }
    match outcome {
        Ok((parked, true)) => (held, Ok(parked)),
        Ok((parked, false)) => (None, Ok(parked)),
        Err(e) => (None, Err(e)),
    }
}

/// A health answer counts when it is HTTP 200 with a JSON array.
fn judge(answer: &Answer) -> anyhow::Result<()> {
    let array = matches!(serde_json::from_slice(&answer.body), Ok(serde_json::Value::Array(_)));
    if answer.status == 200 && array {
        return Ok(());
    }
    let body = super::json_client::quote(&answer.body);
    bail!("HTTP {}: {body}", answer.status)
}

/// `IP:PORT` of an `http://IP:PORT` endpoint.
pub fn host_of(endpoint: &str) -> anyhow::Result<String> {
    let rest = endpoint.strip_prefix("http://").with_context(|| format!("{endpoint}: blocking-wake needs http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    anyhow::ensure!(host.contains(':'), "{endpoint}: give the port, e.g. http://127.0.0.1:8500");
    Ok(host.to_owned())
}

/// Fails early when the soft limit on open files (from `/proc/self/limits`) cannot hold every client's
/// connection (`ulimit -n` raises it up to the hard limit).
fn check_fd_limit(clients: usize) -> anyhow::Result<()> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else { return Ok(()) };
    let need = clients as u64 + SPARE_FDS;
    match soft_open_files(&limits) {
        Some(soft) if soft < need => {
            bail!(
                "{clients} clients need about {need} open files but the soft limit is {soft}: raise it with ulimit -n"
            )
        }
        _ => Ok(()),
    }
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text (`None` when unlimited or not found).
pub fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

fn nonce() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_plain_http_endpoints() {
        assert_eq!(host_of("http://127.0.0.1:8500").unwrap(), "127.0.0.1:8500");
        assert_eq!(host_of("http://127.0.0.1:8500/").unwrap(), "127.0.0.1:8500");
        assert!(host_of("https://127.0.0.1:8500").is_err());
        assert!(host_of("http://127.0.0.1").is_err());
    }

    #[test]
    fn the_soft_open_files_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_files(limits), Some(1024));
        assert_eq!(soft_open_files("Max open files            unlimited unlimited files"), None);
        assert_eq!(soft_open_files(""), None);
    }

    #[test]
    fn only_200_with_an_array_counts() {
        let answer = |status, body: &[u8]| Answer { status, index: 1, body: body.to_vec(), arrived: Instant::now() };
        assert!(judge(&answer(200, b"[]")).is_ok());
        assert!(judge(&answer(200, b"{}")).is_err());
        let e = judge(&answer(500, b"rpc error")).unwrap_err();
        assert_eq!(format!("{e}"), "HTTP 500: rpc error");
    }
}
