//! The typed configuration of one `meridian server` process: defaults live here, a TOML file overrides them,
//! and the CLI (flags and environment) overrides the file. Validation turns bad values into clear errors.

use crate::dns_settings::{DnsSettings, ZoneMap};
use std::net::SocketAddr;
use std::path::PathBuf;

pub use meridian_consensus::ReadPolicy;
use meridian_kv::AutoCompaction;
use meridian_types::{DcName, ZoneName};
pub use meridian_types::{TimingConfig, TimingPreset};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tls::config::{PeerTlsFiles, ServerTlsFiles, TlsSettings};

/// etcd's default limit on the encoded size of one request.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_572_864;
/// etcd's default backend quota: 2 GiB.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 << 30;
/// Free space on the data dir's file system below which a member counts its disk as full.
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 64 << 20;
/// Above this quota etcd warns that the backend may perform poorly; so does Meridian.
pub const MAX_RECOMMENDED_QUOTA_BACKEND_BYTES: u64 = 8 << 30;

/// Everything one server process needs to start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Human-readable member name, unique in the cluster.
    pub name: String,
    /// Directory holding the Raft log, the state machine and snapshots.
    pub data_dir: PathBuf,
    /// URL on which the etcd v3 gRPC API is served, e.g. `http://127.0.0.1:2379`.
    pub listen_client: String,
    /// URL on which peers reach this member.
    pub listen_peer: String,
    /// Datacenter this member lives in.
    pub dc: DcName,
    /// Zone inside the datacenter.
    pub zone: ZoneName,
    /// Raft timing.
    pub timing: TimingConfig,
    /// Largest accepted encoded request, in bytes.
    pub max_request_bytes: usize,
    /// Applied entries between state-machine snapshots (after which the log is truncated). etcd's default,
    /// 100 000: a snapshot dumps the whole store, so at a million keys a 10 000-entry interval meant writing
    /// ~300 MB per 10 000 writes.
    pub snapshot_count: u64,
    /// The size `state.redb` may reach before the NOSPACE alarm stops writes that add data (etcd's
    /// `--quota-backend-bytes`; 0 means the default, 2 GiB).
    pub quota_backend_bytes: u64,
    /// Free space the data dir's file system must keep. Below it the member treats its disk as full before a
    /// write can fail: it raises NOSPACE, refuses writes, hands leadership over, and resumes by itself once
    /// space is back. Covers the Raft log's and the kv store's next writes (a journal checkpoint, a commit).
    pub disk_reserve_bytes: u64,
    /// `periodic` (keep a time span of history) or `revision` (keep a number of revisions), as etcd's
    /// `--auto-compaction-mode`.
    pub auto_compaction_mode: String,
    /// What auto-compaction keeps: hours or a duration (`30m`) in periodic mode, revisions in revision mode; `0`
    /// (the default) turns it off. etcd's `--auto-compaction-retention`.
    pub auto_compaction_retention: String,
    /// Tokens Authenticate hands out: `simple` (default) or `jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256`
    /// (etcd's `--auth-token`).
    pub auth_token: String,
    /// Seconds a simple token lives without use (etcd's `--auth-token-ttl`, 300).
    pub auth_token_ttl: u64,
    /// bcrypt cost of password hashes (etcd's `--bcrypt-cost`, 10; 4..=31).
    pub bcrypt_cost: u32,
    /// Allow listening on non-loopback addresses without TLS and auth. Never on by default.
    pub insecure_allow_remote: bool,
    /// Topology file listing every member and the placement policy. Without it the member forms a
    /// single-node cluster of itself.
    pub topology: Option<PathBuf>,
    /// Run a topology whose validation failed only because losing one datacenter loses the majority.
    pub force_topology: bool,
    /// Start without bootstrapping: wait to be added to an existing cluster (etcd's
    /// `--initial-cluster-state existing`), as after `etcdctl member add`.
    pub join: bool,
    /// URL of the admin HTTP API (status, metrics, fault injection), e.g. `http://127.0.0.1:2381`. Off when unset.
    pub listen_admin: Option<String>,
    /// URL of the Consul-compatible HTTP API (`http://IP:PORT`, `https://` for TLS with the client
    /// certificate, or a bare `IP:PORT`); `none` or an empty string turns it off. Unset means Consul's
    /// `127.0.0.1:8500`, given up with a warning when that address is taken (several members on one host);
    /// an address set explicitly that cannot be bound fails the start.
    pub listen_http: Option<String>,
    /// Serve the fault-injection endpoints on the admin API. Never on by default.
    pub enable_fault_injection: bool,
    /// How linearizable reads confirm leadership: `read-index` (default) or `lease`.
    pub read_policy: ReadPolicy,
    /// Threads running the server's async tasks (gRPC, Raft, watches); unset means half the CPUs, at least
    /// one (see [`ServerConfig::worker_threads_for`]).
    pub worker_threads: Option<usize>,
    /// The member's server certificate (PEM) for the client listener and the admin listener (etcd's
    /// `--cert-file`). Used when those listen on `https://`.
    pub cert_file: Option<PathBuf>,
    /// Its private key (etcd's `--key-file`).
    pub key_file: Option<PathBuf>,
    /// CA bundle client certificates are verified against (etcd's `--trusted-ca-file`).
    pub trusted_ca_file: Option<PathBuf>,
    /// Require a client certificate signed by the trusted CA on the client listener (etcd's `--client-cert-auth`).
    pub client_cert_auth: bool,
    /// The member's peer certificate (PEM), presented to peers both as server and as client
    /// (etcd's `--peer-cert-file`). Peer TLS is always mutual.
    pub peer_cert_file: Option<PathBuf>,
    /// Its private key (etcd's `--peer-key-file`).
    pub peer_key_file: Option<PathBuf>,
    /// The peer CA bundle (etcd's `--peer-trusted-ca-file`).
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Bearer token the admin HTTP API requires (`Authorization: Bearer ...`). Unset: the admin API needs none
    /// (allowed only on a loopback listener without TLS).
    pub admin_token: Option<AdminToken>,
    /// Leave `/health` and `/metrics` open without a token (default on).
    pub admin_open_health_metrics: bool,
    /// `IP:PORT` of the discovery DNS server (UDP and TCP), or `none` for no DNS. Unset: `127.0.0.1:8600`
    /// (Consul's port), and a member that finds it taken runs without DNS after one warning (several members
    /// on one host); an address given here that cannot be bound fails the start. DNS has no TLS and no auth:
    /// beyond loopback it needs `insecure_allow_remote`.
    pub listen_dns: Option<String>,
    /// The DNS domain discovery answers for (default `meridian`).
    pub dns_domain: String,
    /// The TTL of DNS answers, in seconds (default 0, as Consul: clients ask again each time).
    pub dns_ttl: u32,
    /// Answer with passing instances only; by default warning instances answer too (critical ones never).
    pub dns_only_passing: bool,
    /// Where DNS clients are: source network (CIDR) to `dc/zone` (or `dc`), longest prefix wins. Clients
    /// outside every network are placed in the answering member's datacenter and zone.
    pub dns_zone_map: std::collections::BTreeMap<String, String>,
    /// DNS queries per second allowed from one source address (token bucket, bursts of one second's worth);
    /// 0 turns the limit off.
    pub dns_rate_limit: u32,
    /// The simulation's planted bug `LockSkipsWait` (`planted::configure` sets it): the Lock service answers a
    /// waiter without waiting for the keys ahead of it. No file or flag reaches it (`serde(skip)`); a real server
    /// always has it off.
    #[serde(skip)]
    pub planted_lock_skips_wait: bool,
}

/// Consul's HTTP address, the HTTP API's default.
pub const DEFAULT_LISTEN_HTTP: &str = "127.0.0.1:8500";

/// Where the Consul-compatible HTTP API listens, as the configuration says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpListen {
    /// Not served.
    Off,
    /// The default address: a taken port is a warning, not an error.
    Default(SocketAddr),
    /// An address given explicitly; `tls` when its URL is `https://`.
    Explicit {
        /// The address.
        addr: SocketAddr,
        /// Whether it serves TLS.
        tls: bool,
    },
}

/// The admin API's bearer token; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdminToken(pub String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            name: "default".to_owned(),
            data_dir: PathBuf::from("./meridian-data"),
            listen_client: "http://127.0.0.1:2379".to_owned(),
            listen_peer: "http://127.0.0.1:2380".to_owned(),
            dc: DcName::from("dc-a"),
            zone: ZoneName::from("zone-1"),
            timing: TimingConfig::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            snapshot_count: 100_000,
            quota_backend_bytes: DEFAULT_QUOTA_BACKEND_BYTES,
            disk_reserve_bytes: DEFAULT_DISK_RESERVE_BYTES,
            auto_compaction_mode: "periodic".to_owned(),
            auto_compaction_retention: "0".to_owned(),
            auth_token: "simple".to_owned(),
            auth_token_ttl: crate::auth::DEFAULT_TOKEN_TTL_SECS,
            bcrypt_cost: crate::auth::DEFAULT_BCRYPT_COST,
            insecure_allow_remote: false,
            topology: None,
            force_topology: false,
            join: false,
            listen_admin: None,
            listen_http: None,
            enable_fault_injection: false,
            read_policy: ReadPolicy::ReadIndex,
            worker_threads: None,
            cert_file: None,
            key_file: None,
            trusted_ca_file: None,
            client_cert_auth: false,
            peer_cert_file: None,
            peer_key_file: None,
            peer_trusted_ca_file: None,
            admin_token: None,
            admin_open_health_metrics: true,
            listen_dns: None,
            dns_domain: "meridian".to_owned(),
            dns_ttl: 0,
            dns_only_passing: false,
            dns_zone_map: Default::default(),
            dns_rate_limit: crate::dns_settings::DEFAULT_RATE_LIMIT,
            planted_lock_skips_wait: false,
        }
    }
}

impl ServerConfig {
    /// The DNS listener: `None` when disabled, else its address and whether it was given explicitly (a default
    /// address that is taken only disables DNS).
    pub fn dns_addr(&self) -> Result<Option<(SocketAddr, bool)>> {
        match self.listen_dns.as_deref() {
            None => Ok(Some((crate::dns_settings::DEFAULT_LISTEN.parse().expect("a valid default"), false))),
            Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
            Some(s) => {
                let addr = s.replace("localhost", "127.0.0.1").parse().map_err(|_| {
                    Error::Config(format!("listen-dns {s}: expected IP:PORT (such as 127.0.0.1:8600) or none"))
                })?;
                Ok(Some((addr, true)))
            }
        }
    }

    /// The DNS server's settings, checked.
    pub fn dns_settings(&self) -> Result<DnsSettings> {
        let entries = self.dns_zone_map.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let zone_map = ZoneMap::from_entries(entries).map_err(|e| Error::Config(format!("dns-zone-map: {e}")))?;
        Ok(DnsSettings {
            ttl: self.dns_ttl,
            only_passing: self.dns_only_passing,
            zone_map,
            rate_limit: self.dns_rate_limit,
            ..DnsSettings::new(&self.dns_domain).map_err(Error::Config)?
        })
    }

    /// Parses a TOML config file's text; unknown keys are an error.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// The backend quota in bytes (0 in the file or flags means etcd's default).
    pub fn quota_bytes(&self) -> u64 {
        if self.quota_backend_bytes == 0 { DEFAULT_QUOTA_BACKEND_BYTES } else { self.quota_backend_bytes }
    }

    /// The auto-compaction policy the two settings describe.
    pub fn auto_compaction(&self) -> Result<AutoCompaction> {
        AutoCompaction::parse(&self.auto_compaction_mode, &self.auto_compaction_retention).map_err(Error::Config)
    }

    /// Which links use TLS and from which files (for a validated config, see `validate_resolved`).
    pub fn tls_settings(&self) -> TlsSettings {
        let server = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(ServerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                trusted_ca: self.trusted_ca_file.clone(),
                client_cert_auth: self.client_cert_auth,
            }),
            _ => None,
        };
        let peer = match (&self.peer_cert_file, &self.peer_key_file, &self.peer_trusted_ca_file) {
            (Some(cert), Some(key), Some(ca)) => {
                Some(PeerTlsFiles { cert: cert.clone(), key: key.clone(), trusted_ca: ca.clone() })
            }
            _ => None,
        };
        TlsSettings {
            server,
            peer,
            client_listener: is_https(&self.listen_client),
            peer_listener: is_https(&self.listen_peer),
            admin_listener: self.listen_admin.as_deref().is_some_and(is_https),
            http_listener: self.http_https(),
        }
    }

    /// The authenticator's settings.
    pub fn auth_settings(&self) -> Result<crate::auth::AuthSettings> {
        use crate::auth::{MAX_BCRYPT_COST, MIN_BCRYPT_COST};
        if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&self.bcrypt_cost) {
            let (cost, min, max) = (self.bcrypt_cost, MIN_BCRYPT_COST, MAX_BCRYPT_COST);
            return Err(Error::Config(format!("bcrypt-cost {cost} is outside {min}..={max}")));
        }
        if self.auth_token_ttl == 0 {
            return Err(Error::Config("auth-token-ttl must be positive".into()));
        }
        Ok(crate::auth::AuthSettings {
            token: crate::auth::TokenKind::parse(&self.auth_token).map_err(Error::Config)?,
            token_ttl: std::time::Duration::from_secs(self.auth_token_ttl),
            bcrypt_cost: self.bcrypt_cost,
        })
    }

    /// The socket address of the client listener.
    pub fn client_addr(&self) -> Result<SocketAddr> {
        parse_listen_url(&self.listen_client)
    }

    /// The socket address of the peer listener.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        parse_listen_url(&self.listen_peer)
    }

    /// The socket address of the admin HTTP listener, when enabled.
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>> {
        self.listen_admin.as_deref().map(parse_listen_url).transpose()
    }

    /// Where the Consul-compatible HTTP API listens (see [`ServerConfig::listen_http`]).
    pub fn http_listen(&self) -> Result<HttpListen> {
        match self.listen_http.as_deref().map(str::trim) {
            None => Ok(HttpListen::Default(parse_listen_url(DEFAULT_LISTEN_HTTP)?)),
            Some(off) if off.is_empty() || off.eq_ignore_ascii_case("none") => Ok(HttpListen::Off),
            Some(url) => {
                let addr = parse_listen_url(url).map_err(|_| {
                    Error::Config(format!("listen-http {url:?}: expected http://IP:PORT, https://IP:PORT or none"))
                })?;
                Ok(HttpListen::Explicit { addr, tls: is_https(url) })
            }
        }
    }

    /// Whether the HTTP API is configured as `https://`.
    fn http_https(&self) -> bool {
        self.listen_http.as_deref().is_some_and(|u| is_https(u.trim()))
    }

    /// How many async worker threads to run on a machine with `cpus` CPUs: the setting, or half the CPUs (at
    /// least one). A write hops between several tasks (gRPC, openraft's core and state-machine worker), and
    /// every hop to another worker thread is a wake-up; the Raft log's writer thread, tokio's blocking pool
    /// and the kernel's network and disk work want CPUs of their own. Measured on 2 CPUs (one worker against
    /// two): a one-client put is ~10% faster on one member, put throughput on three members sharing the
    /// CPUs is as good or better, and one member's 256-client puts and 64-client reads are ~7% slower.
    pub fn worker_threads_for(&self, cpus: usize) -> usize {
        self.worker_threads.unwrap_or((cpus / 2).max(1))
    }

    /// [`ServerConfig::validate`] plus the checks that need every value settled, including those a topology file
    /// supplies (such as this member's admin URL).
    pub fn validate_resolved(&self) -> Result<()> {
        self.validate()?;
        if self.enable_fault_injection && self.listen_admin.is_none() {
            return Err(Error::Config(
                "--enable-fault-injection needs an admin listener (--listen-admin or the topology's admin_url)".into(),
            ));
        }
        let admin_https = self.listen_admin.as_deref().is_some_and(is_https) || self.http_https();
        if self.cert_file.is_some() && !is_https(&self.listen_client) && !admin_https {
            return Err(Error::Config(format!(
                "--cert-file is set but neither listen-client ({}) nor listen-admin nor listen-http is https://",
                self.listen_client
            )));
        }
        if self.peer_cert_file.is_some() && !is_https(&self.listen_peer) {
            return Err(Error::Config(format!(
                "--peer-cert-file is set but listen-peer ({}) is not https://",
                self.listen_peer
            )));
        }
        Ok(())
    }

    /// The listeners on a non-loopback address without TLS (refused unless `insecure_allow_remote`).
    pub fn insecure_remote_listeners(&self) -> Result<Vec<(&'static str, SocketAddr)>> {
        let mut listeners = vec![
            ("listen-client", self.client_addr()?, is_https(&self.listen_client)),
            ("listen-peer", self.peer_addr()?, is_https(&self.listen_peer)),
        ];
        if let (Some(url), Some(addr)) = (&self.listen_admin, self.admin_addr()?) {
            listeners.push(("listen-admin", addr, is_https(url)));
        }
        // DNS has neither TLS nor auth.
        if let Some((addr, _)) = self.dns_addr()? {
            listeners.push(("listen-dns", addr, false));
        }
        if let HttpListen::Explicit { addr, tls } = self.http_listen()? {
            listeners.push(("listen-http", addr, tls));
        }
        Ok(listeners
            .into_iter()
            .filter(|(_, addr, tls)| !addr.ip().is_loopback() && !tls)
            .map(|(w, a, _)| (w, a))
            .collect())
    }

    /// The TLS settings that make sense only together.
    fn validate_tls(&self) -> Result<()> {
        let err = |msg: String| Err(Error::Config(msg));
        if self.cert_file.is_some() != self.key_file.is_some() {
            return err("--cert-file and --key-file go together: give both or neither".into());
        }
        if self.peer_cert_file.is_some() != self.peer_key_file.is_some() {
            return err("--peer-cert-file and --peer-key-file go together: give both or neither".into());
        }
        if self.client_cert_auth && self.trusted_ca_file.is_none() {
            return err(
                "--client-cert-auth needs --trusted-ca-file (the CA client certificates are checked against)".into()
            );
        }
        if self.peer_cert_file.is_some() && self.peer_trusted_ca_file.is_none() {
            return err("peer TLS is always mutual: --peer-cert-file needs --peer-trusted-ca-file".into());
        }
        if is_https(&self.listen_client) && self.cert_file.is_none() {
            return err(format!(
                "listen-client {} is https:// but no --cert-file/--key-file is given",
                self.listen_client
            ));
        }
        if is_https(&self.listen_peer) && self.peer_cert_file.is_none() {
            return err(format!(
                "listen-peer {} is https:// but no --peer-cert-file/--peer-key-file/--peer-trusted-ca-file is given",
                self.listen_peer
            ));
        }
        if let Some(admin) = self.listen_admin.as_deref().filter(|u| is_https(u))
            && self.cert_file.is_none()
        {
            return err(format!("listen-admin {admin} is https:// but no --cert-file/--key-file is given"));
        }
        if self.http_https() && self.cert_file.is_none() {
            return err(format!(
                "listen-http {} is https:// but no --cert-file/--key-file is given",
                self.listen_http.as_deref().unwrap_or_default()
            ));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.0.is_empty()) {
            return err("admin-token must not be empty".into());
        }
        Ok(())
    }

    /// Checks the values that can be wrong independently of the environment.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::Config("name must not be empty".into()));
        }
        self.validate_tls()?;
        if let Some((what, addr)) = self.insecure_remote_listeners()?.first()
            && !self.insecure_allow_remote
        {
            return Err(Error::Config(format!(
                "{what} {addr} is not a loopback address and does not use TLS (https:// with certificates); \
                 use TLS or pass --insecure-allow-remote"
            )));
        }
        if !self.timing.is_valid() {
            return Err(Error::Config(format!(
                "election timeout ({} ms) must exceed three heartbeats ({} ms each)",
                self.timing.election_ms(),
                self.timing.heartbeat_ms()
            )));
        }
        if self.max_request_bytes == 0 {
            return Err(Error::Config("max-request-bytes must be positive".into()));
        }
        self.auto_compaction()?;
        self.auth_settings()?;
        self.dns_settings()?;
        self.http_listen()?;
        if self.worker_threads == Some(0) {
            return Err(Error::Config(
                "worker-threads must be positive (leave it unset for half the CPUs, at least one)".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `url` asks for TLS.
pub fn is_https(url: &str) -> bool {
    url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Accepts `http://host:port`, `https://host:port` (TLS) and a bare `host:port`.
fn parse_listen_url(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    let rest = rest.replace("localhost", "127.0.0.1");
    rest.parse().map_err(|_| Error::Config(format!("{url}: expected http://IP:PORT")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_and_validate() {
        let cfg = ServerConfig::default();
        cfg.validate().unwrap();
        assert!(cfg.client_addr().unwrap().ip().is_loopback());
        assert_eq!(cfg.data_dir, PathBuf::from("./meridian-data"));
    }

    #[test]
    fn example_config_file_parses() {
        let text = include_str!("../../../config/meridian.example.toml");
        let cfg = ServerConfig::from_toml(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.name, "n1");
        assert_eq!(cfg.timing.preset, TimingPreset::Lan);
        assert_eq!(cfg.read_policy, ReadPolicy::ReadIndex);
        assert_eq!(cfg.snapshot_count, ServerConfig::default().snapshot_count, "the example shows the default");
        assert!(!cfg.client_cert_auth && cfg.admin_open_health_metrics, "the TLS and admin keys show their defaults");
        assert_eq!((cfg.cert_file, cfg.admin_token), (None, None), "certificates and the token are commented out");
    }

    #[test]
    fn read_policy_is_read_index_by_default_and_lease_on_request() {
        assert_eq!(ServerConfig::default().read_policy, ReadPolicy::ReadIndex);
        assert_eq!(ServerConfig::from_toml("read_policy = \"lease\"").unwrap().read_policy, ReadPolicy::LeaseRead);
        assert_eq!(ServerConfig::from_toml("read_policy = \"read-index\"").unwrap().read_policy, ReadPolicy::ReadIndex);
        let err = ServerConfig::from_toml("read_policy = \"stale\"").unwrap_err();
        assert!(err.to_string().contains("read_policy"), "{err}");
    }

    #[test]
    fn worker_threads_default_to_half_the_cpus_and_zero_is_refused() {
        let default = ServerConfig::default();
        assert_eq!(default.worker_threads, None);
        assert_eq!([1, 2, 3, 8, 64].map(|cpus| default.worker_threads_for(cpus)), [1, 1, 1, 4, 32]);
        let cfg = ServerConfig::from_toml("worker_threads = 3").unwrap();
        assert_eq!(cfg.worker_threads, Some(3));
        assert_eq!(cfg.worker_threads_for(64), 3, "a setting wins over the CPU count");
        cfg.validate().unwrap();
        let zero = ServerConfig::from_toml("worker_threads = 0").unwrap();
        assert!(zero.validate().unwrap_err().to_string().contains("worker-threads"));
    }

    #[test]
    fn quota_and_auto_compaction_follow_etcd_flags() {
        let default = ServerConfig::default();
        assert_eq!(default.quota_bytes(), 2 << 30);
        assert_eq!(default.auto_compaction().unwrap(), AutoCompaction::Off);
        let cfg = ServerConfig::from_toml("quota_backend_bytes = 0\nauto_compaction_retention = \"30m\"").unwrap();
        assert_eq!(cfg.quota_bytes(), 2 << 30, "0 means the default, as in etcd");
        assert_eq!(cfg.auto_compaction().unwrap(), AutoCompaction::Periodic(std::time::Duration::from_secs(1800)));
        let cfg =
            ServerConfig::from_toml("auto_compaction_mode = \"revision\"\nauto_compaction_retention = \"1h\"").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("revision count"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = ServerConfig::from_toml("nmae = \"x\"").unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }

    #[test]
    fn remote_listen_needs_explicit_insecure_flag() {
        let cfg = ServerConfig { listen_client: "http://0.0.0.0:2379".into(), ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("insecure-allow-remote"));
        let cfg = ServerConfig { insecure_allow_remote: true, ..cfg };
        cfg.validate().unwrap();
    }

    #[test]
    fn dns_listens_on_consuls_port_by_default_and_beyond_loopback_only_when_insecure() {
        let cfg = ServerConfig::default();
        assert_eq!(cfg.dns_addr().unwrap(), Some(("127.0.0.1:8600".parse().unwrap(), false)));
        let settings = cfg.dns_settings().unwrap();
        assert_eq!((settings.domain.to_ascii(), settings.ttl, settings.only_passing), ("meridian.".into(), 0, false));
        let cfg = ServerConfig::from_toml("listen_dns = \"none\"").unwrap();
        assert_eq!(cfg.dns_addr().unwrap(), None);
        let cfg = ServerConfig::from_toml("listen_dns = \"0.0.0.0:53\"").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("listen-dns 0.0.0.0:53"));
        ServerConfig { insecure_allow_remote: true, ..cfg }.validate().unwrap();
        let cfg = ServerConfig::from_toml("[dns_zone_map]\n\"10.1.0.0/16\" = \"dc-a/z1\"\n").unwrap();
        assert!(!cfg.dns_settings().unwrap().zone_map.is_empty());
        let cfg = ServerConfig::from_toml("[dns_zone_map]\n\"10.1.0.0/16\" = \"dc a\"\n").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("dns-zone-map"));
        assert!(ServerConfig::from_toml("dns_domian = \"x\"").is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_http_api_defaults_to_consuls_address_and_can_be_turned_off_or_moved() {
        let default = ServerConfig::default();
        assert_eq!(default.http_listen().unwrap(), HttpListen::Default("127.0.0.1:8500".parse().unwrap()));
        for off in ["none", "", "NONE"] {
            let cfg = ServerConfig { listen_http: Some(off.into()), ..Default::default() };
            assert_eq!(cfg.http_listen().unwrap(), HttpListen::Off, "{off:?}");
        }
        let cfg = ServerConfig::from_toml("listen_http = \"http://127.0.0.1:18500\"").unwrap();
        assert_eq!(
            cfg.http_listen().unwrap(),
            HttpListen::Explicit { addr: "127.0.0.1:18500".parse().unwrap(), tls: false }
        );
        cfg.validate().unwrap();
        let bad = ServerConfig { listen_http: Some("http://nowhere".into()), ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("listen-http"));
        let remote = ServerConfig { listen_http: Some("http://0.0.0.0:8500".into()), ..Default::default() };
        let e = remote.validate().unwrap_err().to_string();
        assert!(e.contains("listen-http 0.0.0.0:8500 is not a loopback address"), "{e}");
        ServerConfig { insecure_allow_remote: true, ..remote }.validate().unwrap();
        let tls = ServerConfig { listen_http: Some("https://0.0.0.0:8501".into()), ..Default::default() };
        assert!(tls.validate().unwrap_err().to_string().contains("listen-http https://0.0.0.0:8501 is https://"));
        let tls = ServerConfig { cert_file: Some("s.crt".into()), key_file: Some("s.key".into()), ..tls };
        tls.validate_resolved().unwrap();
        assert!(tls.tls_settings().http_listener);
    }

    #[test]
    fn presets_give_etcd_like_timings() {
        let lan = TimingConfig::default();
        assert_eq!((lan.heartbeat_ms(), lan.election_ms(), lan.min_lease_ttl_secs()), (100, 1000, 2));
        let wan = TimingConfig { preset: TimingPreset::Wan, ..Default::default() };
        assert_eq!((wan.heartbeat_ms(), wan.election_ms()), (250, 2500));
    }

    #[test]
    fn fault_injection_needs_an_admin_listener_once_resolved() {
        let cfg = ServerConfig { enable_fault_injection: true, ..Default::default() };
        cfg.validate().unwrap();
        assert!(cfg.validate_resolved().unwrap_err().to_string().contains("admin listener"));
        let cfg = ServerConfig { listen_admin: Some("http://127.0.0.1:2381".into()), ..cfg };
        cfg.validate_resolved().unwrap();
    }

    #[test]
    fn bad_listen_url_is_a_clear_error() {
        let cfg = ServerConfig { listen_client: "http://nowhere".into(), ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("expected http://IP:PORT"));
    }

    #[test]
    fn tls_settings_that_belong_together_are_checked() {
        let base = ServerConfig::default();
        let with = |f: &dyn Fn(&mut ServerConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c.validate_resolved().map_err(|e| e.to_string())
        };
        let e = with(&|c| c.cert_file = Some("s.crt".into())).unwrap_err();
        assert!(e.contains("--cert-file and --key-file go together"), "{e}");
        let e = with(&|c| c.listen_client = "https://127.0.0.1:2379".into()).unwrap_err();
        assert!(e.contains("is https:// but no --cert-file"), "{e}");
        let e = with(&|c| c.client_cert_auth = true).unwrap_err();
        assert!(e.contains("--client-cert-auth needs --trusted-ca-file"), "{e}");
        let e = with(&|c| {
            c.peer_cert_file = Some("p.crt".into());
            c.peer_key_file = Some("p.key".into());
        })
        .unwrap_err();
        assert!(e.contains("always mutual"), "{e}");
        let e = with(&|c| {
            c.cert_file = Some("s.crt".into());
            c.key_file = Some("s.key".into());
        })
        .unwrap_err();
        assert!(e.contains("neither listen-client"), "{e}");
        with(&|c| {
            c.listen_client = "https://127.0.0.1:2379".into();
            c.cert_file = Some("s.crt".into());
            c.key_file = Some("s.key".into());
        })
        .unwrap();
        assert!(format!("{:?}", AdminToken("secret".into())).contains("redacted"));
    }

    #[test]
    fn a_remote_listener_is_allowed_with_tls() {
        let cfg = ServerConfig {
            listen_client: "https://0.0.0.0:2379".into(),
            cert_file: Some("s.crt".into()),
            key_file: Some("s.key".into()),
            ..Default::default()
        };
        cfg.validate().unwrap();
        assert!(cfg.insecure_remote_listeners().unwrap().is_empty());
        let plain = ServerConfig { listen_peer: "http://0.0.0.0:2380".into(), ..cfg };
        let e = plain.validate().unwrap_err().to_string();
        assert!(e.contains("listen-peer 0.0.0.0:2380 is not a loopback address and does not use TLS"), "{e}");
    }
}
