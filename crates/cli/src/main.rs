//! The `meridian` binary. Each subcommand lives in its own module; this file only parses the command line
//! and sets up logging.

mod admin_http;
mod bench;
mod certs;
mod failover;
mod playground;
mod server_cmd;
mod service;
mod status_cmd;
mod tls_client;

use clap::{Parser, Subcommand};

/// The server allocates many small, short-lived buffers per request (gRPC frames, Raft entries, watch
/// events); mimalloc handles that pattern with far less contention than glibc's malloc. It is built with
/// `no_thp`: with transparent huge pages, every purge of idle memory gave back 2 MiB pages that the next burst
/// faulted in and zeroed again (`clear_page_erms` was 9-11% of a 3-node put profile); see docs/performance.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Meridian: a multi-datacenter, etcd-compatible consistent store.
#[derive(Parser, Debug)]
#[command(name = "meridian", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run one cluster member serving the etcd v3 API.
    Server(Box<server_cmd::ServerArgs>),
    /// Start the canonical 3-DC cluster locally, with emulated WAN, and show its live status.
    Playground(playground::PlaygroundArgs),
    /// Load an etcd v3 endpoint and report throughput and latency.
    Bench(bench::BenchArgs),
    #[command(about = certs::ABOUT, long_about = certs::LONG_ABOUT)]
    Certs(certs::CertsArgs),
    /// Show the cluster from its admin APIs: members, leader, lag and datacenter verdicts.
    Status(status_cmd::StatusArgs),
    /// Show and switch the failover groups of your services (a member's admin API).
    Failover(failover::FailoverArgs),
    /// Register, list and query services (a member's Consul-compatible HTTP API).
    Service(service::ServiceArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG")
                // hickory-server logs every DNS query and response at info: a line per query is too many.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server_cmd::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Playground(args) => playground::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Status(args) => status_cmd::run(args),
        Command::Failover(args) => failover::run(args),
        Command::Service(args) => service::run(args),
    };
    // One line with the whole chain of causes, never a backtrace.
    if let Err(e) = result {
        eprintln!("meridian: {e:#}");
        std::process::exit(1);
    }
}
