//! `meridian bench`: a load generator for any etcd v3 endpoint (Meridian's or etcd's).
//!
//! Many concurrent clients share a few gRPC connections (or, with `--protocol json`, each has an HTTP/1.1
//! connection to etcd's JSON gateway) and run one workload (`put`, `range`, `txn`,
//! `watch-latency`, `mixed`, `authenticate`, `lock`; against the Consul-compatible HTTP API `health`,
//! `register`, `blocking-wake`) for `--total` operations or for a `--duration`, optionally
//! paced open-loop at `--rate` ops/s. The report gives throughput, an HDR latency histogram and errors by kind, as text or as one
//! JSON object (`--json`). Endpoints beyond loopback are refused unless `--allow-remote` is given.
//!
//! - `args`: flags and their validation into a [`args::Plan`];
//! - `keys`: key numbering and the random generator;
//! - `schedule`: the budget and the open-loop rate schedule;
//! - `workloads`: the key-value operations; `json_client`: put and range over the JSON gateway; `watch`: the
//!   watch-latency watcher; `lock`: Lock then Unlock;
//! - `consul_client`: `health` and `register` over Meridian's Consul-compatible HTTP API; `wake`: the
//!   `blocking-wake` workload over `http1`'s bare connections, measured by `wake_stats`;
//! - `stats`: histograms and error counts; `report`: text and JSON;
//! - `runner`: connections, clients, progress, merging.

mod args;
mod consul_client;
mod credentials;
mod http1;
mod json_client;
mod keys;
mod lock;
mod report;
mod runner;
mod schedule;
mod stats;
mod wake;
mod wake_stats;
mod watch;
mod workloads;

pub use args::BenchArgs;

/// Runs a benchmark and prints its report on stdout.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = args::Plan::from_args(&args)?;
    let json = plan.json;
    let runtime = runtime(plan.threads)?;
    if plan.workload == args::Workload::BlockingWake {
        let report = runtime.block_on(wake::execute(plan))?;
        println!("{}", if json { report.to_json().to_string() } else { report.to_text() });
        return Ok(());
    }
    let report = runtime.block_on(runner::execute(plan))?;
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}

/// The generator's runtime: one thread runs every client, timer and connection with no hand-offs between
/// threads, which took 14–44% off the generator's CPU per operation (docs/performance.md).
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
}
