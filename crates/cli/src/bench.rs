//! `meridian bench`: a load generator for any etcd v3 endpoint (Meridian's or etcd's). It runs a bounded
//! number of operations from many concurrent clients over a few shared connections, and reports throughput
//! and an HDR latency histogram. Every run stops by itself after `--total` operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};
use tonic::transport::{Channel, Endpoint};

/// What to measure.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Workload {
    /// Puts of fresh or random keys.
    Put,
    /// Ranges of one key, linearizable or serializable.
    Range,
}

/// Read consistency of range workloads.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Consistency {
    /// Linearizable (ReadIndex on the leader).
    L,
    /// Serializable (local state).
    S,
}

/// Flags of `meridian bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    workload: Workload,
    /// Comma-separated endpoints, e.g. http://127.0.0.1:2379.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// gRPC connections shared by the clients.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Operations in total.
    #[arg(long, default_value_t = 10_000)]
    total: u64,
    /// Key size in bytes.
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    val_size: usize,
    /// Keys are drawn from this many distinct keys (0: every put writes a new key).
    #[arg(long, default_value_t = 0)]
    key_space: u64,
    /// Range consistency.
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    consistency: Consistency,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Allow endpoints outside loopback.
    #[arg(long)]
    allow_remote: bool,
}

/// Runs a benchmark and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    for ep in &args.endpoints {
        check_loopback(ep, args.allow_remote)?;
    }
    if args.clients == 0 || args.conns == 0 || args.total == 0 {
        bail!("--clients, --conns and --total must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(bench(&args))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}

fn check_loopback(endpoint: &str, allow_remote: bool) -> anyhow::Result<()> {
    let host = endpoint.trim_start_matches("http://").trim_start_matches("https://");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback =
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || host == "[::1]";
    if !loopback && !allow_remote {
        bail!("{endpoint} is not a loopback address; pass --allow-remote to load a remote cluster");
    }
    Ok(())
}

struct Report {
    workload: String,
    clients: usize,
    ops: u64,
    errors: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

impl Report {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn to_text(&self) -> String {
        format!(
            "{} clients={} ops={} errors={} elapsed={:.2}s\n  throughput {:.0} ops/s\n  latency ms: min {:.3} \
             p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
            self.workload,
            self.clients,
            self.ops,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.hist.min() as f64 / 1000.0,
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.hist.max() as f64 / 1000.0,
        )
    }

    fn to_json(&self) -> String {
        serde_json::json!({
            "workload": self.workload,
            "clients": self.clients,
            "ops": self.ops,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_s": self.rate(),
            "latency_ms": {
                "min": self.hist.min() as f64 / 1000.0,
                "p50": self.ms(0.5), "p90": self.ms(0.9), "p99": self.ms(0.99),
                "p999": self.ms(0.999), "max": self.hist.max() as f64 / 1000.0,
            }
        })
        .to_string()
    }
}

async fn connect(endpoints: &[String], conns: usize) -> anyhow::Result<Vec<KvClient<Channel>>> {
    let mut out = Vec::with_capacity(conns);
    for i in 0..conns {
        let ep = &endpoints[i % endpoints.len()];
        let channel = Endpoint::from_shared(ep.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {ep}"))?;
        out.push(KvClient::new(channel).max_decoding_message_size(64 << 20));
    }
    Ok(out)
}

fn key_for(i: u64, size: usize) -> Vec<u8> {
    let digits = format!("{i:0width$}", width = size.max(1));
    digits.into_bytes()
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Report> {
    let clients = connect(&args.endpoints, args.conns).await?;
    let value = vec![b'v'; args.val_size];
    if matches!(args.workload, Workload::Range) {
        // The range workload reads one existing key, as etcd's `benchmark range` does.
        let mut c = clients[0].clone();
        c.put(PutRequest { key: key_for(0, args.key_size), value: value.clone(), ..Default::default() }).await?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = ProgressBar::new(args.total);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")?);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for c in 0..args.clients {
        let mut client = clients[c % clients.len()].clone();
        let (next, errors, bar, value) = (next.clone(), errors.clone(), bar.clone(), value.clone());
        let (total, key_size, key_space, workload, consistency) =
            (args.total, args.key_size, args.key_space, args.workload, args.consistency);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let began = Instant::now();
                let ok = match workload {
                    Workload::Put => {
                        let k = if key_space == 0 {
                            i
                        } else {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            rng % key_space
                        };
                        let req = PutRequest { key: key_for(k, key_size), value: value.clone(), ..Default::default() };
                        client.put(req).await.is_ok()
                    }
                    Workload::Range => {
                        let req = RangeRequest {
                            key: key_for(0, key_size),
                            serializable: matches!(consistency, Consistency::S),
                            ..Default::default()
                        };
                        client.range(req).await.is_ok()
                    }
                };
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                if ok {
                    let _ = hist.record(micros.max(1));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                bar.inc(1);
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        hist.add(t.await?)?;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let errors = errors.load(Ordering::Relaxed);
    let workload = match args.workload {
        Workload::Put => "put".to_owned(),
        Workload::Range => format!("range-{}", if matches!(args.consistency, Consistency::S) { "s" } else { "l" }),
    };
    Ok(Report { workload, clients: args.clients, ops: hist.len(), errors, elapsed, hist })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_endpoints_are_refused_by_default() {
        assert!(check_loopback("http://10.1.2.3:2379", false).is_err());
        assert!(check_loopback("http://10.1.2.3:2379", true).is_ok());
        assert!(check_loopback("http://127.0.0.1:2379", false).is_ok());
        assert!(check_loopback("http://localhost:2379", false).is_ok());
    }

    #[test]
    fn keys_have_the_requested_size() {
        assert_eq!(key_for(42, 8), b"00000042".to_vec());
    }
}
