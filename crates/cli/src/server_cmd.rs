//! `meridian server`: builds the typed config (defaults, then the optional TOML file, then flags and
//! `MERIDIAN_*` environment variables) and runs one member until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use meridian_server::ServerConfig;
use meridian_server::config::{AdminToken, ReadPolicy, TimingPreset};
use meridian_types::{DcName, ZoneName};

/// Flags of `meridian server`. Each overrides the same key of the config file.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// TOML config file (see config/meridian.example.toml).
    #[arg(long, env = "MERIDIAN_CONFIG")]
    config: Option<PathBuf>,
    /// Member name, unique in the cluster.
    #[arg(long, env = "MERIDIAN_NAME")]
    name: Option<String>,
    /// Data directory (default ./meridian-data).
    #[arg(long, env = "MERIDIAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Client URL for the etcd v3 API (default http://127.0.0.1:2379).
    #[arg(long, env = "MERIDIAN_LISTEN_CLIENT")]
    listen_client: Option<String>,
    /// Peer URL (default http://127.0.0.1:2380).
    #[arg(long, env = "MERIDIAN_LISTEN_PEER")]
    listen_peer: Option<String>,
    /// Datacenter of this member.
    #[arg(long, env = "MERIDIAN_DC")]
    dc: Option<String>,
    /// Zone of this member.
    #[arg(long, env = "MERIDIAN_ZONE")]
    zone: Option<String>,
    /// Raft timing preset: lan or wan.
    #[arg(long, env = "MERIDIAN_TIMING", value_parser = parse_preset)]
    timing: Option<TimingPreset>,
    /// Largest accepted encoded request in bytes.
    #[arg(long, env = "MERIDIAN_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Applied entries between snapshots.
    #[arg(long, env = "MERIDIAN_SNAPSHOT_COUNT")]
    snapshot_count: Option<u64>,
    /// Size the state machine's database may reach before the NOSPACE alarm stops writes (0: 2 GiB).
    #[arg(long, env = "MERIDIAN_QUOTA_BACKEND_BYTES")]
    quota_backend_bytes: Option<u64>,
    /// Free space the data dir's file system must keep; below it the disk counts as full (default 64 MiB).
    #[arg(long, env = "MERIDIAN_DISK_RESERVE_BYTES")]
    disk_reserve_bytes: Option<u64>,
    /// Auto-compaction mode: periodic (keep a span of time) or revision (keep a number of revisions).
    #[arg(long, env = "MERIDIAN_AUTO_COMPACTION_MODE")]
    auto_compaction_mode: Option<String>,
    /// Auto-compaction retention: hours or a duration such as 30m (periodic), revisions (revision); 0 is off.
    #[arg(long, env = "MERIDIAN_AUTO_COMPACTION_RETENTION")]
    auto_compaction_retention: Option<String>,
    /// Tokens Authenticate issues: simple (default) or jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256[,ttl=5m].
    #[arg(long, env = "MERIDIAN_AUTH_TOKEN")]
    auth_token: Option<String>,
    /// Seconds a simple token lives without use (default 300).
    #[arg(long, env = "MERIDIAN_AUTH_TOKEN_TTL")]
    auth_token_ttl: Option<u64>,
    /// bcrypt cost of password hashes, 4..=31 (default 10).
    #[arg(long, env = "MERIDIAN_BCRYPT_COST")]
    bcrypt_cost: Option<u32>,
    /// Allow non-loopback listeners without TLS and auth.
    #[arg(long, env = "MERIDIAN_INSECURE_ALLOW_REMOTE")]
    insecure_allow_remote: bool,
    /// Topology file listing every member and the placement policy.
    #[arg(long, env = "MERIDIAN_TOPOLOGY")]
    topology: Option<PathBuf>,
    /// Run a topology in which losing one datacenter loses the majority (otherwise refused).
    #[arg(long = "force", env = "MERIDIAN_FORCE_TOPOLOGY")]
    force_topology: bool,
    /// Join an existing cluster (after `etcdctl member add`) instead of bootstrapping.
    #[arg(long, env = "MERIDIAN_JOIN")]
    join: bool,
    /// URL of the admin HTTP API, e.g. http://127.0.0.1:2381.
    #[arg(long, env = "MERIDIAN_LISTEN_ADMIN")]
    listen_admin: Option<String>,
    /// URL of the Consul-compatible HTTP API (default 127.0.0.1:8500, skipped with a warning when taken;
    /// https:// for TLS with --cert-file; none turns it off).
    #[arg(long, env = "MERIDIAN_LISTEN_HTTP")]
    listen_http: Option<String>,
    /// Serve fault-injection endpoints on the admin API (for local runs and drills only).
    #[arg(long, env = "MERIDIAN_ENABLE_FAULT_INJECTION")]
    enable_fault_injection: bool,
    /// Linearizable read protocol: read-index (default) or lease.
    #[arg(long, env = "MERIDIAN_READ_POLICY", value_parser = parse_read_policy)]
    read_policy: Option<ReadPolicy>,
    /// Threads running the async tasks (default: half the CPUs, at least one).
    #[arg(long, env = "MERIDIAN_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Server certificate (PEM) of the client and admin listeners (used when they are https://).
    #[arg(long, env = "MERIDIAN_CERT_FILE")]
    cert_file: Option<PathBuf>,
    /// Private key of --cert-file.
    #[arg(long, env = "MERIDIAN_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// CA bundle client certificates are verified against.
    #[arg(long, env = "MERIDIAN_TRUSTED_CA_FILE")]
    trusted_ca_file: Option<PathBuf>,
    /// Require a client certificate signed by --trusted-ca-file.
    #[arg(long, env = "MERIDIAN_CLIENT_CERT_AUTH")]
    client_cert_auth: bool,
    /// Peer certificate (PEM), presented to other members (peer TLS is always mutual).
    #[arg(long, env = "MERIDIAN_PEER_CERT_FILE")]
    peer_cert_file: Option<PathBuf>,
    /// Private key of --peer-cert-file.
    #[arg(long, env = "MERIDIAN_PEER_KEY_FILE")]
    peer_key_file: Option<PathBuf>,
    /// The peer CA bundle.
    #[arg(long, env = "MERIDIAN_PEER_TRUSTED_CA_FILE")]
    peer_trusted_ca_file: Option<PathBuf>,
    /// Discovery DNS address, UDP and TCP (default 127.0.0.1:8600, skipped with a warning when taken; `none`
    /// turns DNS off). DNS has no TLS or auth: beyond loopback it needs --insecure-allow-remote.
    #[arg(long, env = "MERIDIAN_LISTEN_DNS")]
    listen_dns: Option<String>,
    /// The DNS domain (default meridian).
    #[arg(long, env = "MERIDIAN_DNS_DOMAIN")]
    dns_domain: Option<String>,
    /// TTL of DNS answers in seconds (default 0).
    #[arg(long, env = "MERIDIAN_DNS_TTL")]
    dns_ttl: Option<u32>,
    /// Answer DNS with passing instances only (by default warning ones answer too).
    #[arg(long, env = "MERIDIAN_DNS_ONLY_PASSING")]
    dns_only_passing: bool,
    /// Where DNS clients are, by source network: 10.1.0.0/16=dc-a/z1,10.2.0.0/16=dc-b (replaces the file's map).
    #[arg(long, env = "MERIDIAN_DNS_ZONE_MAP")]
    dns_zone_map: Option<String>,
    /// DNS queries per second per source address (default 1000; 0 is unlimited).
    #[arg(long, env = "MERIDIAN_DNS_RATE_LIMIT")]
    dns_rate_limit: Option<u32>,
    /// Bearer token of the admin HTTP API (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "MERIDIAN_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    admin_token: Option<AdminToken>,
}

/// The token in a type whose `Debug` never shows it.
fn parse_admin_token(s: &str) -> Result<AdminToken, String> {
    Ok(AdminToken(s.to_owned()))
}

fn parse_read_policy(s: &str) -> Result<ReadPolicy, String> {
    s.parse()
}

fn parse_preset(s: &str) -> Result<TimingPreset, String> {
    match s {
        "lan" => Ok(TimingPreset::Lan),
        "wan" => Ok(TimingPreset::Wan),
        other => Err(format!("unknown timing preset {other:?}; expected lan or wan")),
    }
}

impl ServerArgs {
    /// Layers the file and then the flags over the defaults.
    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                ServerConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => ServerConfig::default(),
        };
        if let Some(v) = self.name {
            cfg.name = v;
        }
        if let Some(v) = self.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = self.listen_client {
            cfg.listen_client = v;
        }
        if let Some(v) = self.listen_peer {
            cfg.listen_peer = v;
        }
        if let Some(v) = self.dc {
            cfg.dc = DcName(v);
        }
        if let Some(v) = self.zone {
            cfg.zone = ZoneName(v);
        }
        if let Some(v) = self.timing {
            cfg.timing.preset = v;
        }
        if let Some(v) = self.max_request_bytes {
            cfg.max_request_bytes = v;
        }
        if let Some(v) = self.snapshot_count {
            cfg.snapshot_count = v;
        }
        if let Some(v) = self.quota_backend_bytes {
            cfg.quota_backend_bytes = v;
        }
        if let Some(v) = self.disk_reserve_bytes {
            cfg.disk_reserve_bytes = v;
        }
        if let Some(v) = self.auto_compaction_mode {
            cfg.auto_compaction_mode = v;
        }
        if let Some(v) = self.auto_compaction_retention {
            cfg.auto_compaction_retention = v;
        }
        if let Some(v) = self.auth_token {
            cfg.auth_token = v;
        }
        if let Some(v) = self.auth_token_ttl {
            cfg.auth_token_ttl = v;
        }
        if let Some(v) = self.bcrypt_cost {
            cfg.bcrypt_cost = v;
        }
        if self.insecure_allow_remote {
            cfg.insecure_allow_remote = true;
        }
        if let Some(v) = self.topology {
            cfg.topology = Some(v);
        }
        if self.force_topology {
            cfg.force_topology = true;
        }
        if self.join {
            cfg.join = true;
        }
        if let Some(v) = self.listen_admin {
            cfg.listen_admin = Some(v);
        }
        if let Some(v) = self.listen_http {
            cfg.listen_http = Some(v);
        }
        if self.enable_fault_injection {
            cfg.enable_fault_injection = true;
        }
        if let Some(v) = self.read_policy {
            cfg.read_policy = v;
        }
        if let Some(v) = self.worker_threads {
            cfg.worker_threads = Some(v);
        }
        for (flag, key) in [
            (self.cert_file, &mut cfg.cert_file),
            (self.key_file, &mut cfg.key_file),
            (self.trusted_ca_file, &mut cfg.trusted_ca_file),
            (self.peer_cert_file, &mut cfg.peer_cert_file),
            (self.peer_key_file, &mut cfg.peer_key_file),
            (self.peer_trusted_ca_file, &mut cfg.peer_trusted_ca_file),
        ] {
            if flag.is_some() {
                *key = flag;
            }
        }
        if self.client_cert_auth {
            cfg.client_cert_auth = true;
        }
        if let Some(v) = self.admin_token {
            cfg.admin_token = Some(v);
        }
        if let Some(v) = self.listen_dns {
            cfg.listen_dns = Some(v);
        }
        if let Some(v) = self.dns_domain {
            cfg.dns_domain = v;
        }
        if let Some(v) = self.dns_ttl {
            cfg.dns_ttl = v;
        }
        if self.dns_only_passing {
            cfg.dns_only_passing = true;
        }
        if let Some(v) = self.dns_zone_map {
            let entries =
                meridian_server::dns::ZoneMap::parse_flag(&v).map_err(|e| anyhow::anyhow!("--dns-zone-map: {e}"))?;
            cfg.dns_zone_map = entries.into_iter().collect();
        }
        if let Some(v) = self.dns_rate_limit {
            cfg.dns_rate_limit = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Runs the server until a shutdown signal.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let cfg = args.into_config()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads_for(cpus))
        .enable_all()
        .build()?;
    let (data_dir, reserve) = (cfg.data_dir.clone(), cfg.disk_reserve_bytes);
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        // Each life of the member (a full disk stops its Raft node; it starts again in place once there is room:
        // `restart_in_place`) announces itself and keeps its warnings and SIGHUP handler.
        let each_life = |server: &meridian_server::RunningServer| {
            let scheme =
                if meridian_server::config::is_https(&server.member.config().listen_client) { "https" } else { "http" };
            eprintln!("meridian: serving the etcd v3 API on {scheme}://{}", server.client_addr);
            let insecure_warning = warn_insecure_listeners(server.member.config()).map_err(config_error)?;
            let reload_on_hup = reload_tls_on_sighup(server.tls.clone()).map_err(config_error)?;
            Ok((insecure_warning, reload_on_hup))
        };
        meridian_server::restart_in_place::run(cfg, meridian_server::ServerEnv::default, each_life, shutdown)
            .await
            .map_err(|e| explain_full_disk(e.into(), &data_dir, reserve))
    })
}

fn config_error(e: anyhow::Error) -> meridian_server::Error {
    meridian_server::Error::Config(format!("{e:#}"))
}

/// A start that failed because the data dir's file system is full becomes one line saying so, with what is free
/// and what is needed; any other error is left as it is.
fn explain_full_disk(e: anyhow::Error, data_dir: &std::path::Path, reserve: u64) -> anyhow::Error {
    if !meridian_consensus::says_disk_full(&format!("{e:#}")) {
        return e;
    }
    use meridian_consensus::Disk as _;
    let free = meridian_consensus::OsDisk::open(data_dir).ok().and_then(|d| d.free_bytes());
    let free = free.map_or_else(|| "unknown".to_owned(), |f| format!("{f} bytes"));
    anyhow::anyhow!(
        "cannot start: the file system holding {} is full ({free} free); opening the Raft log and the kv store \
         needs at least {reserve} bytes free (disk_reserve_bytes). Free space there (nothing acknowledged is lost) \
         and start again",
        data_dir.display()
    )
}

/// With `--insecure-allow-remote` and a plain listener beyond loopback, a warning every minute (the task ends
/// when the returned guard drops).
fn warn_insecure_listeners(cfg: &ServerConfig) -> anyhow::Result<Option<AbortOnDrop>> {
    let listeners = cfg.insecure_remote_listeners()?;
    if listeners.is_empty() {
        return Ok(None);
    }
    let text = listeners.iter().map(|(what, addr)| format!("{what} {addr}")).collect::<Vec<_>>().join(", ");
    Ok(Some(AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            tracing::warn!(listeners = %text, "listening beyond loopback without TLS (--insecure-allow-remote): \
                traffic and credentials cross the network in clear text");
        }
    }))))
}

/// Re-reads the TLS files on every SIGHUP (they are also polled every few seconds).
fn reload_tls_on_sighup(
    tls: Option<std::sync::Arc<meridian_server::tls::TlsReloader>>,
) -> anyhow::Result<Option<AbortOnDrop>> {
    let Some(tls) = tls else { return Ok(None) };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(Some(AbortOnDrop(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!(outcome = ?tls.reload(), "SIGHUP: TLS files re-read");
        }
    }))))
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Completes on SIGINT or SIGTERM (the handlers are installed now, so a signal that comes early is not missed).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<ServerConfig> {
        Cli::try_parse_from(std::iter::once("meridian").chain(args.iter().copied()))?.server.into_config()
    }

    #[test]
    fn flags_override_the_file_and_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "name = \"from-file\"\nworker_threads = 4\nsnapshot_count = 5\n").unwrap();
        let path = file.to_str().unwrap();
        let cfg = config(&["--config", path, "--worker-threads", "1"]).unwrap();
        assert_eq!((cfg.name.as_str(), cfg.worker_threads, cfg.snapshot_count), ("from-file", Some(1), 5));
        assert_eq!(config(&["--config", path]).unwrap().worker_threads, Some(4));
        assert_eq!(config(&[]).unwrap().worker_threads, None, "half the CPUs unless set");
        assert!(config(&["--worker-threads", "0"]).unwrap_err().to_string().contains("worker-threads"));
    }

    #[test]
    fn dns_flags_reach_the_config_and_are_checked() {
        let cfg = config(&[]).unwrap();
        assert_eq!(cfg.listen_dns, None, "the default: 127.0.0.1:8600, skipped when taken");
        let cfg = config(&[
            "--listen-dns",
            "127.0.0.1:8653",
            "--dns-domain",
            "sd.example",
            "--dns-ttl",
            "5",
            "--dns-only-passing",
            "--dns-zone-map",
            "10.1.0.0/16=dc-a/z1, 10.2.0.0/16=dc-b",
            "--dns-rate-limit",
            "50",
        ])
        .unwrap();
        assert_eq!(cfg.dns_addr().unwrap(), Some(("127.0.0.1:8653".parse().unwrap(), true)));
        assert_eq!(
            (cfg.dns_domain.as_str(), cfg.dns_ttl, cfg.dns_only_passing, cfg.dns_rate_limit),
            ("sd.example", 5, true, 50)
        );
        assert_eq!(cfg.dns_zone_map.get("10.2.0.0/16").map(String::as_str), Some("dc-b"));
        assert_eq!(config(&["--listen-dns", "none"]).unwrap().dns_addr().unwrap(), None);
        for (flag, value, says) in [
            ("--listen-dns", "0.0.0.0:8600", "insecure-allow-remote"),
            ("--listen-dns", "nowhere", "listen-dns"),
            ("--dns-zone-map", "10.1.0.0/99=dc-a", "dns-zone-map"),
            ("--dns-domain", "bad_domain", "dns-domain"),
        ] {
            let err = format!("{:#}", config(&[flag, value]).unwrap_err());
            assert!(err.contains(says), "{flag} {value}: {err}");
        }
        config(&["--listen-dns", "0.0.0.0:8600", "--insecure-allow-remote"]).unwrap();
    }

    #[test]
    fn the_http_api_flag_reaches_the_config() {
        use meridian_server::config::HttpListen;
        let cfg = config(&["--listen-http", "http://127.0.0.1:18500"]).unwrap();
        assert_eq!(
            cfg.http_listen().unwrap(),
            HttpListen::Explicit { addr: "127.0.0.1:18500".parse().unwrap(), tls: false }
        );
        assert_eq!(config(&["--listen-http", "none"]).unwrap().http_listen().unwrap(), HttpListen::Off);
        assert!(matches!(config(&[]).unwrap().http_listen().unwrap(), HttpListen::Default(_)));
        let err = config(&["--listen-http", "http://0.0.0.0:8500"]).unwrap_err().to_string();
        assert!(err.contains("listen-http") && err.contains("insecure-allow-remote"), "{err}");
    }

    #[test]
    fn tls_flags_reach_the_config_and_are_checked() {
        let cfg = config(&[
            "--listen-client",
            "https://127.0.0.1:2379",
            "--cert-file",
            "s.crt",
            "--key-file",
            "s.key",
            "--trusted-ca-file",
            "ca.crt",
            "--client-cert-auth",
            "--admin-token",
            "tok",
        ])
        .unwrap();
        assert_eq!(
            (cfg.cert_file.as_deref(), cfg.key_file.as_deref()),
            (Some("s.crt".as_ref()), Some("s.key".as_ref()))
        );
        assert!(cfg.client_cert_auth && cfg.trusted_ca_file.is_some());
        assert_eq!(cfg.admin_token.as_ref().map(|t| t.0.as_str()), Some("tok"));
        assert!(!format!("{cfg:?}").contains("tok\""), "the token never shows in Debug output");
        let err = config(&["--client-cert-auth"]).unwrap_err().to_string();
        assert!(err.contains("--trusted-ca-file"), "{err}");
        let err = config(&["--listen-client", "https://127.0.0.1:2379"]).unwrap_err().to_string();
        assert!(err.contains("no --cert-file"), "{err}");
    }
}
