//! Runs a [`Plan`]: connects (gRPC channels, or the JSON gateway's endpoints with `--protocol json`), fills the key space when the workload reads, starts the clients (and the
//! watcher for `watch-latency`), hands out operation numbers under the [`Schedule`], shows progress, and
//! merges every client's [`Stats`] into the [`Report`].
//!
//! Every loop here ends by itself: clients stop when the schedule says the budget is spent, each request is
//! bounded by `--timeout`, and the watcher drains for at most `--timeout` after the last put.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meridian_proto::etcdserverpb::PutRequest;
use meridian_proto::etcdserverpb::kv_client::KvClient;

use super::args::{Plan, Protocol, Workload};
use super::consul_client::{ConsulClient, ConsulEndpoint};
use super::credentials::{Conn, authorize};
use super::json_client::{JsonClient, JsonEndpoint};
use super::report::Report;
use super::schedule::{Admit, Schedule};
use super::stats::{Stats, error_kind};
use super::watch::{SendLog, Watcher, run_prefix, watch_key};
use super::workloads::Worker;
use meridian_types::SplitMix64;

/// Clients that write the key space before a read workload starts.
const PREFILL_CLIENTS: usize = 64;

/// Runs `plan` to the end and reports.
pub async fn execute(plan: Plan) -> anyhow::Result<Report> {
    let plan = Arc::new(plan);
    let conns = match plan.protocol {
        Protocol::Grpc => Conns::Grpc(connect(&plan).await?),
        Protocol::Json => Conns::Json(connect_json(&plan).await?),
        Protocol::Consul => Conns::Consul(connect_consul(&plan)?),
    };
    if plan.workload.prefills() {
        prefill(&plan, &conns).await?;
    }
    let schedule = Schedule { budget: plan.budget, rate: plan.rate };
    let bar = progress_bar(&plan, &schedule)?;
    let (elapsed, stats) = match (&conns, plan.workload) {
        (Conns::Grpc(channels), Workload::WatchLatency) => run_watch(&plan, channels, schedule, &bar).await?,
        (Conns::Json(_) | Conns::Consul(_), Workload::WatchLatency) => {
            bail!("watch-latency does not run over --protocol json")
        }
        _ => run_kv(&plan, &conns, schedule, &bar).await?,
    };
    bar.finish_and_clear();
    Ok(Report { plan: Arc::unwrap_or_clone(plan), elapsed, stats })
}

/// Hands out operation numbers to clients.
struct Dispatcher {
    next: AtomicU64,
    schedule: Schedule,
    start: Instant,
}

impl Dispatcher {
    fn new(schedule: Schedule) -> Dispatcher {
        Dispatcher { next: AtomicU64::new(0), schedule, start: Instant::now() }
    }

    /// The next operation and the instant its latency counts from (its due time when paced, else now), after
    /// waiting until it is due; `None` when the budget is spent.
    async fn take(&self) -> Option<(u64, Instant)> {
        let op = self.next.fetch_add(1, Ordering::Relaxed);
        match self.schedule.admit(op, self.start.elapsed()) {
            Admit::Stop => None,
            Admit::Run { due: None } => Some((op, Instant::now())),
            Admit::Run { due: Some(offset) } => {
                let at = self.start + offset;
                tokio::time::sleep_until(at.into()).await;
                Some((op, at))
            }
        }
    }
}

fn micros_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What the clients talk over.
enum Conns {
    /// gRPC channels, shared round-robin by the clients.
    Grpc(Vec<Conn>),
    /// The gateway of each endpoint; every client opens a connection of its own.
    Json(Vec<JsonEndpoint>),
    /// The Consul-compatible HTTP API of each endpoint; every client opens a connection of its own.
    Consul(Vec<ConsulEndpoint>),
}

impl Conns {
    /// The worker of client `c` (its connection, and the endpoint [`endpoint_of`] names).
    fn worker(&self, plan: &Arc<Plan>, c: usize) -> anyhow::Result<Worker> {
        Ok(match self {
            Conns::Grpc(channels) => Worker::new(&channels[c % channels.len()], plan.clone(), c as u64),
            Conns::Json(endpoints) => {
                let value = vec![b'v'; plan.val_size];
                let client = JsonClient::new(&endpoints[c % endpoints.len()], &value, plan.timeout)?;
                Worker::json(client, plan.clone(), c as u64)
            }
            Conns::Consul(endpoints) => {
                let client = ConsulClient::new(&endpoints[c % endpoints.len()], plan.timeout)?;
                Worker::consul(client, plan.clone(), c as u64)
            }
        })
    }
}

async fn connect(plan: &Plan) -> anyhow::Result<Vec<Conn>> {
    let mut out = Vec::with_capacity(plan.conns);
    for i in 0..plan.conns {
        out.push(channel(plan, &plan.endpoints[i % plan.endpoints.len()], Some(plan.timeout)).await?);
    }
    Ok(out)
}

/// Every endpoint's gateway, checked and logged in as the plan's user if it has one.
async fn connect_json(plan: &Plan) -> anyhow::Result<Vec<JsonEndpoint>> {
    let mut out = Vec::with_capacity(plan.endpoints.len());
    for endpoint in &plan.endpoints {
        out.push(JsonEndpoint::connect(plan, endpoint).await?);
    }
    Ok(out)
}

/// Every endpoint's HTTP API (connections open with each client's first request).
fn connect_consul(plan: &Plan) -> anyhow::Result<Vec<ConsulEndpoint>> {
    plan.endpoints.iter().map(|endpoint| ConsulEndpoint::new(plan, endpoint)).collect()
}

/// A connection to `endpoint`, logged in as the plan's user if it has one.
async fn channel(plan: &Plan, endpoint: &str, timeout: Option<Duration>) -> anyhow::Result<Conn> {
    let channel = crate::tls_client::grpc_channel(endpoint, plan.tls.as_ref(), timeout).await?;
    authorize(channel, plan.user.as_ref(), plan.timeout).await
}

fn kv(conn: &Conn) -> KvClient<Conn> {
    KvClient::new(conn.clone()).max_decoding_message_size(64 << 20)
}

fn progress_bar(plan: &Plan, schedule: &Schedule) -> anyhow::Result<ProgressBar> {
    let visible = !plan.json && std::io::stderr().is_terminal();
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = match schedule.expected_ops() {
        Some(n) => ProgressBar::with_draw_target(Some(n), target)
            .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} ops  {per_sec}  eta {eta}")?),
        None => ProgressBar::with_draw_target(None, target)
            .with_style(ProgressStyle::with_template("{spinner} {pos} ops  {per_sec}  {elapsed}")?),
    };
    if visible {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    Ok(bar)
}

/// Writes every key of the key space, untimed, so reads find values.
async fn prefill(plan: &Arc<Plan>, conns: &Conns) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let space = plan.keys.space;
    let mut tasks = Vec::new();
    for c in 0..PREFILL_CLIENTS.min(space as usize).max(1) {
        let mut worker = conns.worker(plan, c)?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= space {
                    return Ok::<(), String>(());
                }
                worker.put(i).await.map_err(|s| error_kind(&s))?;
            }
        }));
    }
    for t in tasks {
        if let Err(kind) = t.await? {
            bail!("filling the key space before measuring failed: {kind}");
        }
    }
    Ok(())
}

async fn run_kv(
    plan: &Arc<Plan>,
    conns: &Conns,
    schedule: Schedule,
    bar: &ProgressBar,
) -> anyhow::Result<(Duration, Stats)> {
    let mut workers = Vec::with_capacity(plan.clients);
    for c in 0..plan.clients {
        let mut worker = conns.worker(plan, c)?;
        worker.prepare().await.map_err(|s| anyhow::anyhow!("preparing client {c} failed: {}", error_kind(&s)))?;
        workers.push(worker);
    }
    let dispatcher = Arc::new(Dispatcher::new(schedule));
    let mut tasks = Vec::with_capacity(plan.clients);
    for (c, mut worker) in workers.into_iter().enumerate() {
        let endpoint = endpoint_of(plan, c);
        let (dispatcher, bar) = (dispatcher.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            while let Some((op, from)) = dispatcher.take().await {
                match worker.run(op).await {
                    Ok(class) => {
                        stats.record(class, micros_since(from));
                        stats.answered(endpoint);
                    }
                    Err(status) => stats.error(&error_kind(&status)),
                }
                bar.inc(1);
            }
            worker.finish().await;
            stats
        }));
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(&t.await.context("a client task failed")?);
    }
    Ok((dispatcher.start.elapsed(), stats))
}

async fn run_watch(
    plan: &Arc<Plan>,
    channels: &[Conn],
    schedule: Schedule,
    bar: &ProgressBar,
) -> anyhow::Result<(Duration, Stats)> {
    let prefix = Arc::new(run_prefix(SplitMix64::new(u64::from(std::process::id())).next_u64() ^ nanos_now()));
    let log = Arc::new(SendLog::default());
    // The watcher has a connection of its own (no per-request timeout: the stream lives for the whole run).
    let watch_channel = channel(plan, &plan.endpoints[0], None).await?;
    let watcher = Watcher::start(watch_channel, prefix.to_vec(), log.clone(), plan.timeout).await?;
    let dispatcher = Arc::new(Dispatcher::new(schedule));
    let mut tasks = Vec::with_capacity(plan.clients);
    for c in 0..plan.clients {
        let mut kv = kv(&channels[c % channels.len()]);
        let endpoint = endpoint_of(plan, c);
        let (dispatcher, bar, log, prefix) = (dispatcher.clone(), bar.clone(), log.clone(), prefix.clone());
        let (key_size, value) = (plan.keys.size, vec![b'v'; plan.val_size]);
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            while let Some((op, _due)) = dispatcher.take().await {
                let key = watch_key(&prefix, op, key_size);
                let sent = Instant::now();
                log.sent(op, sent);
                let req = PutRequest { key, value: value.clone(), ..Default::default() };
                match kv.put(req).await {
                    Ok(_) => {
                        stats.record_write_only(micros_since(sent));
                        stats.answered(endpoint);
                    }
                    // A put that failed is an error unless its event already arrived (then it took effect and
                    // was measured as an event).
                    Err(status) => {
                        if log.take(op).is_some() {
                            stats.error(&error_kind(&status));
                        }
                    }
                }
                bar.inc(1);
            }
            stats
        }));
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(&t.await.context("a client task failed")?);
    }
    stats.merge(&watcher.finish(plan.timeout).await?);
    Ok((dispatcher.start.elapsed(), stats))
}

/// The index of the endpoint client `c` talks to: client `c` uses connection `c mod conns`, and connection `i`
/// goes to endpoint `i mod endpoints` (see [`connect`]); over JSON and the HTTP API `conns` is `clients`, so client `c` talks to
/// endpoint `c mod endpoints`, as [`Conns::worker`] has it.
fn endpoint_of(plan: &Plan, c: usize) -> usize {
    (c % plan.conns) % plan.endpoints.len()
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
