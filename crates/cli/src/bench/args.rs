//! The flags of `meridian bench` and their validation into a [`Plan`], the checked description of one run.
//!
//! Everything here is pure: [`Plan::from_args`] either returns a plan every other part of the tool can trust
//! (positive counts, a bounded run, keys that fit their size, loopback endpoints unless allowed) or an error
//! that names the flag at fault.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Args, ValueEnum};

use super::credentials::Credentials;
use super::keys::{KeyOrder, KeySpec};
use super::schedule::Budget;
use crate::tls_client::ClientTlsFiles;

/// Longest run `--duration` accepts, so a run always ends by itself in reasonable time.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Largest key space that `range` and `mixed` write before they start measuring.
pub const MAX_PREFILL: u64 = 1_000_000;
/// etcd's default request size limit (`--max-request-bytes`); larger values would only produce errors.
pub const MAX_VALUE_SIZE: usize = 1_572_864;
/// Longest `--wait` of a blocking query (Consul caps its own at 10 minutes).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Most generator threads `--threads` accepts.
pub const MAX_THREADS: usize = 256;

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Puts of sequential or random keys.
    Put,
    /// Ranges of one existing key (or random keys of `--key-space`, all written first).
    Range,
    /// Compare-and-set: read a key's mod_revision, then a Txn that puts only if it is unchanged.
    Txn,
    /// A watcher on a prefix; putters write under it; latency from a put being sent to its event arriving.
    WatchLatency,
    /// Ranges and puts of random keys, `--read-ratio` of them ranges.
    Mixed,
    /// Logins: Authenticate calls as the `--user` (bcrypt on the member each time).
    Authenticate,
    /// Lock then Unlock through the Lock service, each client with its own lease, on `--key-space` lock names
    /// (default 1: every client contends for one lock).
    Lock,
    /// Consul HTTP API: `GET /v1/health/service/svc-<n>?passing` of random services of `--key-space`.
    Health,
    /// Consul HTTP API: `PUT /v1/agent/service/register`, operation i registering instance `i-<i>` of service
    /// `svc-<i mod key-space>`.
    Register,
    /// Consul HTTP API: `--clients` blocking queries on one service, each on its own connection, woken by one
    /// registration; `--rounds` times.
    BlockingWake,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range => "range",
            Workload::Txn => "txn",
            Workload::WatchLatency => "watch-latency",
            Workload::Mixed => "mixed",
            Workload::Authenticate => "authenticate",
            Workload::Lock => "lock",
            Workload::Health => "health",
            Workload::Register => "register",
            Workload::BlockingWake => "blocking-wake",
        }
    }

    /// Key space used when `--key-space` is not given (0: every put writes a new key).
    pub fn default_key_space(self) -> u64 {
        match self {
            Workload::Put | Workload::WatchLatency | Workload::Authenticate => 0,
            Workload::Range | Workload::Lock => 1,
            Workload::Txn => 1000,
            Workload::Mixed | Workload::Health | Workload::Register => 10_000,
            Workload::BlockingWake => 1,
        }
    }

    /// Whether the workload talks to the Consul-compatible HTTP API rather than etcd's.
    pub fn consul(self) -> bool {
        matches!(self, Workload::Health | Workload::Register | Workload::BlockingWake)
    }

    /// Whether the workload writes its whole key space before measuring (so reads find values).
    pub fn prefills(self) -> bool {
        matches!(self, Workload::Range | Workload::Mixed)
    }
}

/// Read consistency of ranges (including the read of a `txn` compare-and-set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable: the member confirms with a quorum (ReadIndex) before reading.
    L,
    /// Serializable: the member answers from its local state.
    S,
}

/// How the clients reach the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// gRPC: the clients share `--conns` HTTP/2 connections.
    Grpc,
    /// etcd's HTTP/JSON gateway (`POST /v3/kv/put`, `/v3/kv/range`): every client has a keep-alive HTTP/1.1
    /// connection of its own. `put`, `range` and `mixed` only.
    Json,
    /// Meridian's Consul-compatible HTTP API (`--listen-http`): every client has a keep-alive HTTP/1.1
    /// connection of its own. The protocol of `health`, `register` and `blocking-wake`, and only theirs.
    Consul,
}

impl Protocol {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Json => "json",
            Protocol::Consul => "consul",
        }
    }
}

/// Flags of `meridian bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Comma-separated endpoints, e.g. http://127.0.0.1:2379; connections are spread over them round-robin.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Concurrent clients (each has at most one request in flight).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// gRPC connections shared by the clients (client i uses connection i mod conns). With `--protocol json`
    /// every client has its own connection instead.
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// `grpc`, or `json` for etcd's HTTP/JSON gateway on the same endpoints (put, range and mixed only); `consul`
    /// (implied by health, register and blocking-wake) for the Consul-compatible HTTP API. Default: grpc.
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Threads the load generator runs on. With 1 every client shares one thread, which costs the least
    /// CPU per operation (the generator competes with the servers for the CPUs on one machine); raise it only
    /// when one thread cannot keep up.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Operations in total (exactly one of --total and --duration).
    #[arg(long, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Run for this long, e.g. 30s, 500ms, 2m (at most 1h; exactly one of --total and --duration).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Target operations per second over all clients, paced open-loop (0: as fast as the clients go).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Key size in bytes (keys are zero-padded decimal numbers).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Key order: `seq` (op i uses key i, modulo the key space) or `random` (uniform over the key space).
    #[arg(long, value_enum, default_value_t = KeyOrder::Seq)]
    pub key_order: KeyOrder,
    /// Distinct keys (0: unbounded, every op a new key). Defaults: put 0, range 1, txn 1000, mixed 10000.
    #[arg(long)]
    pub key_space: Option<u64>,
    /// blocking-wake: how many times one registration wakes the parked queries.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// blocking-wake: how long each blocking query may wait (`?wait=`), e.g. 60s.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub wait: Duration,
    /// Read consistency of range, mixed and the read of txn.
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    pub consistency: Consistency,
    /// Fraction of ranges in the mixed workload, 0 to 1 (default 0.9).
    #[arg(long)]
    pub read_ratio: Option<f64>,
    /// Bound on each request, e.g. 10s; a request that takes longer counts as an error.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Print one JSON object on stdout instead of text (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Allow endpoints outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// CA bundle of the server certificates of `https://` endpoints (etcdctl's flag).
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate for servers that require one.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Private key of --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Run as this etcd user: NAME:PASSWORD, or NAME with --password (etcdctl's flags).
    #[arg(long)]
    pub user: Option<String>,
    /// The password of --user.
    #[arg(long)]
    pub password: Option<String>,
}

/// A validated benchmark run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The workload.
    pub workload: Workload,
    /// Endpoints, all `http://` and (unless allowed) loopback.
    pub endpoints: Vec<String>,
    /// Concurrent clients, at least 1.
    pub clients: usize,
    /// Connections, between 1 and `clients` (`clients` with [`Protocol::Json`]: one each).
    pub conns: usize,
    /// gRPC or the JSON gateway.
    pub protocol: Protocol,
    /// Generator threads, between 1 and [`MAX_THREADS`].
    pub threads: usize,
    /// When the run stops.
    pub budget: Budget,
    /// Target ops/s over all clients; 0 for unlimited.
    pub rate: u64,
    /// Which keys the operations use.
    pub keys: KeySpec,
    /// Value size in bytes.
    pub val_size: usize,
    /// Read consistency.
    pub consistency: Consistency,
    /// Fraction of reads (mixed only; 0 otherwise).
    pub read_ratio: f64,
    /// Per-request bound.
    pub timeout: Duration,
    /// blocking-wake: rounds (0 for other workloads).
    pub rounds: u64,
    /// blocking-wake: each blocking query's `?wait=`.
    pub wait: Duration,
    /// JSON output.
    pub json: bool,
    /// TLS files for `https://` endpoints.
    pub tls: Option<ClientTlsFiles>,
    /// The etcd user the clients run as.
    pub user: Option<Credentials>,
}

impl Plan {
    /// Checks `args` and builds the plan, or says which flag is wrong.
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Plan> {
        ensure!(!args.endpoints.is_empty(), "--endpoints: give at least one endpoint");
        for ep in &args.endpoints {
            check_endpoint(ep, args.allow_remote)?;
        }
        let tls = ClientTlsFiles::from_flags(args.cacert.as_deref(), args.cert.as_deref(), args.key.as_deref())?;
        if let Some(ep) = args.endpoints.iter().find(|ep| ep.starts_with("https://")) {
            ensure!(tls.is_some(), "{ep} is https://: give --cacert (and --cert/--key if the server wants them)");
        }
        let user = Credentials::from_flags(args.user.as_deref(), args.password.as_deref())?;
        if args.workload == Workload::Authenticate {
            ensure!(user.is_some(), "authenticate logs in as --user NAME:PASSWORD: give one");
        }
        ensure!(args.clients > 0, "--clients must be at least 1");
        ensure!(args.conns > 0, "--conns must be at least 1");
        ensure!(args.conns <= args.clients, "--conns ({}) must not exceed --clients ({})", args.conns, args.clients);
        ensure!(
            (1..=MAX_THREADS).contains(&args.threads),
            "--threads must be between 1 and {MAX_THREADS}, not {}",
            args.threads
        );
        let budget = match (args.total, args.duration) {
            (None, None) if args.workload == Workload::BlockingWake => Budget::Total(args.rounds),
            (_, _) if args.workload == Workload::BlockingWake => {
                bail!("blocking-wake runs --rounds rounds; --total and --duration do not apply")
            }
            (Some(0), _) => bail!("--total must be at least 1"),
            (Some(n), None) => Budget::Total(n),
            (None, Some(d)) => {
                ensure!(!d.is_zero(), "--duration must be positive");
                ensure!(d <= MAX_DURATION, "--duration must be at most {}s", MAX_DURATION.as_secs());
                Budget::Duration(d)
            }
            (None, None) => bail!("give exactly one of --total N and --duration D"),
            (Some(_), Some(_)) => bail!("--total and --duration exclude each other"),
        };
        ensure!(args.key_size > 0, "--key-size must be at least 1");
        ensure!(args.val_size <= MAX_VALUE_SIZE, "--val-size must be at most {MAX_VALUE_SIZE} (etcd's request limit)");
        ensure!(!args.timeout.is_zero(), "--timeout must be positive");
        let space = args.key_space.unwrap_or(args.workload.default_key_space());
        if args.workload == Workload::WatchLatency {
            ensure!(
                args.key_space.is_none() && args.key_order == KeyOrder::Seq,
                "watch-latency writes a fresh key per put; --key-space and --key-order do not apply"
            );
        }
        let keys = KeySpec { size: args.key_size, order: args.key_order, space };
        keys.check()?;
        if args.workload.prefills() {
            ensure!(space > 0, "{} reads existing keys: --key-space must be at least 1", args.workload.name());
            ensure!(space <= MAX_PREFILL, "--key-space must be at most {MAX_PREFILL} for {}", args.workload.name());
        }
        if args.workload == Workload::Txn {
            ensure!(space > 0, "txn needs a bounded --key-space (keys are read, then compared and set)");
        }
        let protocol = match (args.protocol, args.workload.consul()) {
            (None, false) => Protocol::Grpc,
            (None | Some(Protocol::Consul), true) => Protocol::Consul,
            (Some(Protocol::Consul), false) => {
                bail!("--protocol consul runs health, register and blocking-wake only, not {}", args.workload.name())
            }
            (Some(p), true) => {
                bail!("{} talks to the Consul HTTP API, not --protocol {}", args.workload.name(), p.name())
            }
            (Some(p), false) => p,
        };
        if args.workload.consul() {
            ensure!(space > 0, "{} names services svc-0 … : --key-space must be at least 1", args.workload.name());
            ensure!(args.conns == 1, "--conns applies to gRPC; HTTP API clients have a connection each");
            ensure!(args.user.is_none(), "{} does not log in (no --user)", args.workload.name());
        }
        if args.workload == Workload::BlockingWake {
            ensure!(args.rounds > 0, "--rounds must be at least 1");
            ensure!(args.rate == 0, "--rate does not apply to blocking-wake");
            ensure!(!args.wait.is_zero() && args.wait <= MAX_WAIT, "--wait must be between 0 and 10m");
            ensure!(
                args.endpoints.iter().all(|e| e.starts_with("http://")),
                "blocking-wake speaks plain HTTP only (no https:// endpoints)"
            );
        }
        if protocol == Protocol::Json {
            ensure!(
                matches!(args.workload, Workload::Put | Workload::Range | Workload::Mixed),
                "--protocol json runs put, range and mixed only; {} needs --protocol grpc",
                args.workload.name()
            );
            ensure!(
                args.conns == 1,
                "--conns applies to gRPC; with --protocol json every client has its own HTTP/1.1 connection"
            );
        }
        let conns = if protocol == Protocol::Grpc { args.conns } else { args.clients };
        let read_ratio = match (args.workload, args.read_ratio) {
            (Workload::Mixed, r) => {
                let r = r.unwrap_or(0.9);
                ensure!((0.0..=1.0).contains(&r), "--read-ratio must be between 0 and 1, not {r}");
                r
            }
            (_, None) => 0.0,
            (w, Some(_)) => bail!("--read-ratio applies to mixed only, not {}", w.name()),
        };
        Ok(Plan {
            workload: args.workload,
            endpoints: args.endpoints.clone(),
            clients: args.clients,
            conns,
            protocol,
            threads: args.threads,
            budget,
            rate: args.rate,
            keys,
            val_size: args.val_size,
            consistency: args.consistency,
            read_ratio,
            timeout: args.timeout,
            rounds: if args.workload == Workload::BlockingWake { args.rounds } else { 0 },
            wait: args.wait,
            json: args.json,
            tls,
            user,
        })
    }

    /// The workload as reports name it: `range-l`/`range-s` carry the consistency.
    pub fn label(&self) -> String {
        let c = match self.consistency {
            Consistency::L => "l",
            Consistency::S => "s",
        };
        match self.workload {
            Workload::Range | Workload::Txn | Workload::Mixed => format!("{}-{c}", self.workload.name()),
            w => w.name().to_owned(),
        }
    }
}

/// Refuses endpoints that are not `http://HOST:PORT` or `https://HOST:PORT`, and hosts beyond loopback unless
/// `allow_remote`.
pub fn check_endpoint(endpoint: &str, allow_remote: bool) -> anyhow::Result<()> {
    let Some(rest) = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://")) else {
        bail!("{endpoint}: endpoints look like http://127.0.0.1:2379 or https://127.0.0.1:2379")
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    ensure!(!host.is_empty(), "{endpoint}: no host");
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback && !allow_remote {
        bail!("{endpoint} is not a loopback address; pass --allow-remote to load a remote cluster");
    }
    Ok(())
}

/// Parses `500ms`, `30s`, `2m`, `1.5s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().with_context(|| format!("{text:?} is not a duration like 30s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => bail!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)"),
    };
    ensure!(seconds.is_finite() && seconds >= 0.0, "{text:?} is not a valid duration");
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(line: &str) -> anyhow::Result<Plan> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(line.split_whitespace()))?;
        Plan::from_args(&cli.args)
    }

    fn err(line: &str) -> String {
        format!("{:#}", plan(line).expect_err(line))
    }

    #[test]
    fn a_plain_put_run_gets_the_defaults() {
        let p = plan("put --total 100").unwrap();
        assert_eq!(p.budget, Budget::Total(100));
        assert_eq!(p.keys, KeySpec { size: 8, order: KeyOrder::Seq, space: 0 });
        assert_eq!((p.clients, p.conns, p.threads, p.rate, p.val_size), (1, 1, 1, 0, 256));
        assert_eq!(p.endpoints, vec!["http://127.0.0.1:2379".to_owned()]);
        assert_eq!(p.label(), "put");
        assert_eq!(p.protocol, Protocol::Grpc);
    }

    #[test]
    fn json_runs_put_range_and_mixed_on_a_connection_per_client() {
        for w in ["put", "range", "mixed"] {
            let p = plan(&format!("{w} --total 1 --protocol json --clients 8")).unwrap();
            assert_eq!((p.protocol, p.conns), (Protocol::Json, 8), "{w}");
        }
        for w in ["txn", "watch-latency", "authenticate --user u:p", "lock"] {
            let e = err(&format!("{w} --total 1 --protocol json"));
            assert!(e.contains("--protocol json runs put, range and mixed only"), "{w}: {e}");
        }
        assert!(err("put --total 1 --protocol json --clients 4 --conns 2").contains("--conns applies to gRPC"));
        assert_eq!(plan("put --total 1 --protocol grpc --clients 4 --conns 2").unwrap().conns, 2);
    }

    #[test]
    fn discovery_workloads_talk_to_the_http_api_on_a_connection_each() {
        for w in ["health", "register"] {
            let p = plan(&format!("{w} --total 10 --clients 4 --endpoints http://127.0.0.1:8500")).unwrap();
            assert_eq!((p.protocol, p.conns, p.keys.space, p.rounds), (Protocol::Consul, 4, 10_000, 0), "{w}");
            assert_eq!(p.label(), w);
            let e = err(&format!("{w} --total 1 --protocol json"));
            assert!(e.contains("Consul HTTP API"), "{e}");
            assert!(err(&format!("{w} --total 1 --key-space 0")).contains("--key-space"));
            assert!(err(&format!("{w} --total 1 --clients 2 --conns 2")).contains("--conns"));
        }
        assert_eq!(plan("health --duration 10s --protocol consul").unwrap().protocol, Protocol::Consul);
        assert!(err("put --total 1 --protocol consul").contains("health, register and blocking-wake only"));
    }

    #[test]
    fn blocking_wake_runs_rounds_with_a_bounded_wait() {
        let p = plan("blocking-wake --clients 1000 --rounds 3").unwrap();
        assert_eq!((p.budget, p.rounds, p.clients), (Budget::Total(3), 3, 1000));
        assert_eq!(p.wait, Duration::from_secs(60));
        assert_eq!(plan("blocking-wake").unwrap().rounds, 5);
        assert!(err("blocking-wake --total 5").contains("--rounds"));
        assert!(err("blocking-wake --duration 5s").contains("--rounds"));
        assert!(err("blocking-wake --rounds 0").contains("--rounds"));
        assert!(err("blocking-wake --wait 11m").contains("--wait"));
        assert!(err("blocking-wake --rate 5").contains("--rate"));
        assert!(err("blocking-wake --endpoints https://127.0.0.1:8501 --cacert ca.crt").contains("plain HTTP"));
    }

    #[test]
    fn exactly_one_of_total_and_duration() {
        assert!(err("put").contains("exactly one of --total"));
        assert!(plan("put --total 5 --duration 2s").is_err());
        assert_eq!(plan("put --duration 2s").unwrap().budget, Budget::Duration(Duration::from_secs(2)));
        assert!(err("put --duration 2h").contains("at most 3600s"));
        assert!(err("put --total 0").contains("--total"));
        assert!(err("put --duration 0s").contains("--duration"));
    }

    #[test]
    fn counts_must_be_positive_and_conns_at_most_clients() {
        assert!(err("put --total 1 --clients 0").contains("--clients"));
        assert!(err("put --total 1 --conns 0").contains("--conns"));
        assert!(err("put --total 1 --clients 2 --conns 3").contains("must not exceed"));
        assert!(plan("put --total 1 --clients 3 --conns 3").is_ok());
        assert!(err("put --total 1 --threads 0").contains("--threads"));
        assert!(err("put --total 1 --threads 257").contains("--threads"));
        assert_eq!(plan("put --total 1 --threads 4").unwrap().threads, 4);
    }

    #[test]
    fn workload_defaults_and_key_space_rules() {
        assert_eq!(plan("range --total 1").unwrap().keys.space, 1);
        assert_eq!(plan("txn --total 1").unwrap().keys.space, 1000);
        assert_eq!(plan("mixed --total 1").unwrap().keys.space, 10_000);
        assert!(err("range --total 1 --key-space 0").contains("--key-space"));
        assert!(err("txn --total 1 --key-space 0").contains("--key-space"));
        assert!(err("mixed --total 1 --key-space 2000000").contains("at most"));
        assert!(err("put --total 1 --key-order random").contains("random"));
        assert!(err("put --total 1 --key-size 2 --key-space 101").contains("key size"));
        assert!(plan("put --total 1 --key-size 2 --key-space 100").is_ok());
        assert!(err("watch-latency --total 1 --key-space 5").contains("watch-latency"));
        assert!(err("put --total 1 --val-size 2000000").contains("--val-size"));
    }

    #[test]
    fn lock_contends_for_one_name_unless_told_otherwise() {
        assert_eq!(plan("lock --total 1").unwrap().keys.space, 1);
        assert_eq!(plan("lock --total 1 --key-space 0").unwrap().keys.space, 0);
    }

    #[test]
    fn read_ratio_is_for_mixed_only_and_a_fraction() {
        assert_eq!(plan("mixed --total 1").unwrap().read_ratio, 0.9);
        assert_eq!(plan("mixed --total 1 --read-ratio 0.5").unwrap().read_ratio, 0.5);
        assert!(err("mixed --total 1 --read-ratio 1.5").contains("between 0 and 1"));
        assert!(err("put --total 1 --read-ratio 0.5").contains("mixed only"));
    }

    #[test]
    fn labels_carry_the_read_consistency() {
        assert_eq!(plan("range --total 1 --consistency s").unwrap().label(), "range-s");
        assert_eq!(plan("range --total 1").unwrap().label(), "range-l");
        assert_eq!(plan("watch-latency --total 1").unwrap().label(), "watch-latency");
        assert_eq!(plan("lock --total 1").unwrap().label(), "lock");
    }

    #[test]
    fn non_loopback_endpoints_are_refused_unless_allowed() {
        assert!(err("put --total 1 --endpoints http://10.1.2.3:2379").contains("--allow-remote"));
        assert!(plan("put --total 1 --endpoints http://10.1.2.3:2379 --allow-remote").is_ok());
        // One remote endpoint among loopback ones is enough to refuse.
        assert!(plan("put --total 1 --endpoints http://127.0.0.1:1,http://example.com:2379").is_err());
        for ok in ["http://127.0.0.1:2379", "http://127.0.0.2:1", "http://localhost:2379", "http://[::1]:2379"] {
            assert!(check_endpoint(ok, false).is_ok(), "{ok}");
        }
        for bad in ["http://[2001:db8::1]:2379", "http://192.168.1.1:2379", "http://localhost.evil.com:1"] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_endpoint("127.0.0.1:2379", false).is_err());
        assert!(check_endpoint("https://127.0.0.1:2379", false).is_ok());
        assert!(check_endpoint("ftp://127.0.0.1:2379", true).is_err());
        let e = err("put --total 1 --endpoints https://127.0.0.1:2379");
        assert!(e.contains("--cacert"), "{e}");
        assert!(plan("put --total 1 --endpoints https://127.0.0.1:2379 --cacert ca.crt").is_ok());
        assert!(err("put --total 1 --cacert ca.crt --cert c.crt").contains("--cert and --key go together"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
