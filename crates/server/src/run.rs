//! Starting a member: work out the cluster plan (topology), open the Raft node over the gRPC peer transport,
//! wire the watch hub to the apply loop, start the lease expiry loop, and serve the peer service and the
//! etcd v3 API until asked to stop.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use meridian_consensus::{ApplyObserver, Disk, LeaseChange, NodeConfig, OsDisk, RaftNode, RedbBackend, Transport};
use meridian_failover::{Quorum, ReachConfig, VerdictConfig};
use meridian_proto::etcdserverpb::auth_server::AuthServer;
use meridian_proto::etcdserverpb::cluster_server::ClusterServer;
use meridian_proto::etcdserverpb::kv_server::KvServer;
use meridian_proto::etcdserverpb::lease_server::LeaseServer;
use meridian_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use meridian_proto::etcdserverpb::watch_server::WatchServer;
use meridian_proto::mvccpb::Event;
use meridian_proto::v3electionpb::election_server::ElectionServer;
use meridian_proto::v3lockpb::lock_server::LockServer;
use meridian_types::{Revision, Topology};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::codegen::http;
use tower::util::MapResponseLayer;

use crate::admin::{AdminAuthorizer, AdminServer, AdminState, IncomingListener, RootOrToken};
use crate::auth::Authenticator;
use crate::check_runner::relay::Relay;
use crate::check_runner::{Inbox, RunnerConfig};
use crate::clock::Clock;
use crate::config::{HttpListen, ServerConfig};
use crate::error::{Error, Result};
use crate::failover_catalog::{Catalog, FailoverGroups};
pub use crate::running::RunningServer;
pub use crate::server_env::ServerEnv;

use crate::fault::{FaultGate, FaultState, FaultyTransport};
use crate::formation::{self, ClusterPlan};
use crate::grpc::{
    auth::AuthService, cluster::ClusterService, election::ElectionService, kv::KvService, lease, lock::LockService,
    maintenance::MaintenanceService, watch::WatchService,
};
use crate::h2_authority::AuthorityFix;
use crate::leader_loss::{self, AppendStreams, LeaderLossWatch};
use crate::lessor::Lessor;
use crate::life_sockets::LifeNetwork;
use crate::member::{HeaderInfo, Member, MemberParts};
use crate::net::{Incoming, Network, TcpNetwork};
use crate::peer_client::channels::{PeerChannels, PeerTimeouts};
use crate::peer_client::check_client::CheckClient;
use crate::peer_client::client::LeaderClient;
use crate::peer_client::grpc_transport::GrpcTransport;
use crate::peer_client::reach_client::ReachClient;
use crate::peer_service::service::PeerService;
use crate::placement::{self, PlacementHandle};
use crate::planted::{PlantedBug, PlantedKv, UntimedGrants};
use crate::quota::Quota;
use crate::reach_state::ReachState;
use crate::tls::TlsReloader;
use crate::tls::acceptor::{Listener, tls_incoming};

use crate::tls::verifier::MembershipHosts;
use crate::watch_hub::WatchHub;

/// gRPC framing overhead allowed on top of the request limit, so oversized requests reach our own check and
/// get etcd's "request is too large" instead of a transport error (etcd allows the same slack).
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// etcd's default interval for progress notifications on idle watches.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(600);

/// The consensus configuration for this member: its formation `plan`, the timing rules (all in
/// `TimingConfig`) and the read policy, on `disk`.
fn node_config(config: &ServerConfig, plan: ClusterPlan, disk: Arc<dyn Disk>, bug: PlantedBug) -> NodeConfig {
    let (election_min_ms, election_max_ms) = config.timing.raft_election_bounds_ms();
    NodeConfig {
        id: plan.id,
        disk,
        heartbeat_ms: config.timing.heartbeat_ms(),
        election_min_ms,
        election_max_ms,
        snapshot_logs: config.snapshot_count,
        bootstrap_members: plan.bootstrap_members,
        bootstrap_learners: plan.bootstrap_learners,
        bootstrapper: plan.bootstrapper,
        read_policy: config.read_policy,
        resume_leadership_on_restart: bug == PlantedBug::ResumedLeaderSkipsElection,
    }
}

/// Serves the peer service on `incoming` until the listener fails. Peer traffic is gRPC between our own
/// processes (TLS, when configured, is below it, in `incoming`): no :authority repair needed.
fn serve_peers(
    member: Arc<Member>,
    streams: AppendStreams,
    checks: Inbox,
    date: DateHeader,
    incoming: Incoming,
) -> JoinHandle<()> {
    let router = tonic::transport::Server::builder()
        .layer(MapResponseLayer::new(move |res| date.apply(res)))
        .add_service(PeerService::server(member, streams, checks));
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!(error = %e, "peer listener failed");
        }
    })
}

/// The listeners a member serves on, bound before anything else starts so that a taken port fails fast.
struct Listeners {
    client_addr: SocketAddr,
    incoming: Incoming,
    peer_addr: SocketAddr,
    peer_incoming: Incoming,
    admin: Option<(SocketAddr, Incoming)>,
    /// Discovery's DNS (real sockets: the simulation configures none).
    dns: Option<crate::dns::server::BoundDns>,
    http: Option<(SocketAddr, Incoming)>,
}

impl Listeners {
    /// Binds every listener; those whose URL is `https://` handshake TLS with `tls`'s current configuration.
    async fn bind(config: &ServerConfig, net: &dyn Network, tls: Option<&Arc<TlsReloader>>) -> Result<Listeners> {
        let mut bound = Self::bind_plain(config, net).await?;
        let Some(tls) = tls else { return Ok(bound) };
        let settings = tls.settings().clone();
        let wrap = |incoming: Incoming, on: bool, listener: Listener| {
            if on { tls_incoming(incoming, tls.clone(), listener) } else { incoming }
        };
        bound.incoming = wrap(bound.incoming, settings.client_listener, Listener::Client);
        bound.peer_incoming = wrap(bound.peer_incoming, settings.peer_listener, Listener::Peer);
        bound.admin =
            bound.admin.map(|(addr, incoming)| (addr, wrap(incoming, settings.admin_listener, Listener::Admin)));
        // The HTTP API's TLS is the client listener's: same certificate, same client-certificate rule.
        bound.http =
            bound.http.map(|(addr, incoming)| (addr, wrap(incoming, settings.http_listener, Listener::Client)));
        Ok(bound)
    }

    async fn bind_plain(config: &ServerConfig, net: &dyn Network) -> Result<Listeners> {
        let client_addr = config.client_addr()?;
        let (client_addr, incoming) =
            net.bind(client_addr).await.map_err(|e| Error::Listener(format!("{client_addr}: {e}")))?;
        let peer_addr = config.peer_addr()?;
        let (peer_addr, peer_incoming) =
            net.bind(peer_addr).await.map_err(|e| Error::Listener(format!("peer {peer_addr}: {e}")))?;
        let admin = match config.admin_addr()? {
            Some(addr) => Some(TcpNetwork.bind(addr).await.map_err(|e| Error::Listener(format!("admin {addr}: {e}")))?),
            None => None,
        };
        let dns = crate::dns::server::bind_configured(config).await?;
        let http = bind_http(config, net).await?;
        Ok(Listeners { client_addr, incoming, peer_addr, peer_incoming, admin, dns, http })
    }
}

/// Binds the Consul-compatible HTTP API's listener: none when off; at Consul's default address unless it is
/// taken (several members on one host), which is a warning; at an explicit address or the start fails.
async fn bind_http(config: &ServerConfig, net: &dyn Network) -> Result<Option<(SocketAddr, Incoming)>> {
    match config.http_listen()? {
        HttpListen::Off => Ok(None),
        HttpListen::Default(addr) => match net.bind(addr).await {
            Ok(bound) => Ok(Some(bound)),
            Err(e) => {
                tracing::warn!(
                    %addr, error = %e,
                    "the HTTP API's default address is not available: running without the Consul-compatible \
                     HTTP API (choose an address with --listen-http, or turn it off with --listen-http none)"
                );
                Ok(None)
            }
        },
        HttpListen::Explicit { addr, .. } => {
            Ok(Some(net.bind(addr).await.map_err(|e| Error::Listener(format!("listen-http {addr}: {e}")))?))
        }
    }
}

/// Serves the admin HTTP API on `listener`; `/faults` only when fault injection is enabled. A token, TLS or a
/// non-loopback listener puts the API behind the bearer token (`/health` and `/metrics` may stay open).
fn serve_admin(
    (addr, incoming): (SocketAddr, Incoming),
    member: &Arc<Member>,
    faults: &Arc<FaultState>,
    tls: Option<Arc<TlsReloader>>,
    check_stats: Arc<crate::check_runner::Stats>,
) -> Result<AdminServer> {
    let config = member.config();
    let guarded = config.admin_token.is_some()
        || config.listen_admin.as_deref().is_some_and(crate::config::is_https)
        || !addr.ip().is_loopback();
    if guarded && config.admin_token.is_none() {
        tracing::warn!(
            "the admin API is behind TLS or beyond loopback but has no --admin-token: it refuses every \
            request except /health and /metrics"
        );
    }
    let token = config.admin_token.as_ref().map(|t| t.0.clone());
    let authorizer: Option<Arc<dyn AdminAuthorizer>> =
        guarded.then(|| Arc::new(RootOrToken::new(token, member.clone())) as Arc<dyn AdminAuthorizer>);
    let state = AdminState {
        member: member.clone(),
        faults: config.enable_fault_injection.then(|| faults.clone()),
        tls,
        insecure_allow_remote: config.insecure_allow_remote && !config.insecure_remote_listeners()?.is_empty(),
        authorizer,
        open_health_metrics: config.admin_open_health_metrics,
        check_stats: Some(check_stats),
    };
    AdminServer::spawn(IncomingListener::new(incoming, addr), state).map_err(|e| Error::Listener(format!("admin: {e}")))
}

/// Whether a client listener (the etcd API's, or the HTTP API's) beyond loopback must wait for auth before
/// serving remote clients: yes, unless client certificates gate it or the operator chose
/// `--insecure-allow-remote`.
fn remote_needs_auth(config: &ServerConfig) -> Result<bool> {
    let http_remote = match config.http_listen()? {
        HttpListen::Explicit { addr, .. } => !addr.ip().is_loopback(),
        HttpListen::Default(_) | HttpListen::Off => false,
    };
    let remote = !config.client_addr()?.ip().is_loopback() || http_remote;
    Ok(remote && !config.client_cert_auth && !config.insecure_allow_remote)
}

/// Forwards applied events to the watch hub once it exists (the hub needs the Raft node, which needs the
/// observer), and applied lease grants and revokes to the lessor.
struct ApplyHooks {
    hub: OnceLock<Arc<WatchHub<RedbBackend>>>,
    lessor: Arc<Lessor>,
}

impl ApplyHooks {
    /// What the Raft node reports applies to: these hooks, or, with a lease bug planted, hooks that miss grants.
    fn observer(self: &Arc<Self>, bug: PlantedBug) -> Arc<dyn ApplyObserver> {
        match bug {
            PlantedBug::UntimedLeaseGrants => Arc::new(UntimedGrants(self.clone())),
            _ => self.clone(),
        }
    }
}

impl ApplyObserver for ApplyHooks {
    fn on_events(&self, revision: Revision, events: &[Event]) {
        if let Some(hub) = self.hub.get() {
            hub.on_events(revision, events);
        }
    }

    fn on_lease(&self, change: LeaseChange) {
        match change {
            LeaseChange::Granted { id, ttl } => self.lessor.granted(id, ttl),
            LeaseChange::Revoked(id) => self.lessor.revoked(id),
        }
    }
}

/// Starts a member with `config` and begins serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer> {
    start_in(config, ServerEnv::default()).await
}

/// Starts a member with `config` on `env` and begins serving.
pub async fn start_in(mut config: ServerConfig, env: ServerEnv) -> Result<RunningServer> {
    config.validate()?;
    let topology = match env.topology {
        Some(topology) => Some(formation::checked(topology, &config)?),
        None => formation::load_topology(&config)?,
    };
    let plan = formation::plan(&mut config, topology.as_ref())?;
    // The topology may have supplied the listen addresses; check them like explicit ones.
    config.validate_resolved()?;
    let disk = open_disk(&config, env.disk.clone())?;
    // Before this member knows a membership, the peers it accepts are the topology's.
    let peer_hosts =
        Arc::new(MembershipHosts::new(topology.iter().flat_map(|t| t.members.iter().map(|m| m.peer_url.clone()))));
    let tls = load_tls(&config, &peer_hosts)?;
    // Every connection of this life breaks when it stops, as a process's do when it exits (see `life_sockets`).
    let life = LifeNetwork::new(env.net.clone());
    let life_end = life.ender();
    let net: Arc<dyn Network> = Arc::new(life);
    let Listeners {
        client_addr,
        incoming,
        peer_addr,
        peer_incoming,
        admin: admin_listener,
        dns: dns_listener,
        http: http_listener,
    } = Listeners::bind(&config, &*net, tls.as_ref()).await?;

    let id = plan.id;
    let cluster_id = plan.cluster_id;
    let node_config = node_config(&config, plan, disk, env.planted_bug);
    let heartbeat = Duration::from_millis(node_config.heartbeat_ms);
    let placement_config = placement::placement_config(
        &topology.as_ref().map(|t| t.policy.clone()).unwrap_or_default(),
        node_config.election_max_ms,
    );
    let PeerStack { channels, faults, gate, transport } =
        peer_stack(&config, &net, env.fault_seed, topology.as_ref(), id, &tls)?;
    let lessor = Arc::new(Lessor::new(config.timing.min_lease_ttl_secs(), env.clock));
    let hooks = Arc::new(ApplyHooks { hub: OnceLock::new(), lessor: lessor.clone() });
    let raft =
        RaftNode::start(node_config, transport, hooks.observer(env.planted_bug)).await.map_err(Error::Consensus)?;

    peer_hosts.set_raft(raft.clone());
    let headers = Arc::new(HeaderInfo { member_id: id, cluster_id, raft: raft.clone() });
    let hub = Arc::new(WatchHub::new(raft.kv().clone(), headers.clone(), config.max_request_bytes));
    let _ = hooks.hub.set(hub.clone());
    let max_decoding = config.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let reach_client = Arc::new(ReachClient::new(id, channels.clone(), gate.clone()));
    let check_client = CheckClient::new(channels.clone(), gate.clone());
    let leader_client = LeaderClient::new(channels).with_fault_gate(gate);
    let reach = Arc::new(ReachState::new(
        id,
        env.clock,
        ReachConfig::for_timing(config.timing.heartbeat_ms(), config.timing.election_ms()),
    ));
    let verdict_config = verdict_config(&config, topology.as_ref(), env.planted_bug);
    let placement = PlacementHandle::new();
    let failover = FailoverGroups::new(Catalog::new(topology.as_ref(), &config.dc), env.clock);
    let quota_bytes = config.quota_bytes();
    let auto_compaction = config.auto_compaction()?;
    if quota_bytes > crate::config::MAX_RECOMMENDED_QUOTA_BACKEND_BYTES {
        tracing::warn!(quota = quota_bytes, "quota-backend-bytes above 8 GiB: a database that large may be slow");
    }
    let authenticator = authenticator(&config, env.clock, env.auth_seed)?;
    let member = Arc::new(Member::new(MemberParts {
        config,
        headers,
        raft,
        hub: hub.clone(),
        lessor,
        leader_client,
        placement: placement.clone(),
        quota: Arc::new(Quota::new(quota_bytes)),
        authenticator,
        reach: reach.clone(),
        failover,
    }));

    let append_streams = AppendStreams::default();
    let loss_watch = LeaderLossWatch {
        net: net.clone(),
        preference: topology.as_ref().map(|t| t.policy.leader_preference.clone()).unwrap_or_default(),
        step: heartbeat,
        election: Duration::from_millis(member.config().timing.election_ms()),
    };

    let date = DateHeader { fixed: env.fixed_date_header };
    let (check_inbox, check_deliveries) = crate::check_runner::inbox();
    let peer_serve = serve_peers(member.clone(), append_streams.clone(), check_inbox.clone(), date, peer_incoming);

    let mut background = vec![
        tokio::spawn(hub.run(PROGRESS_INTERVAL)),
        tokio::spawn(crate::lease::expiry_loop(member.clone())),
        peer_serve,
        tokio::spawn(placement::run(member.raft().clone(), placement_config, heartbeat, placement, env.clock)),
        tokio::spawn(crate::publish::run(member.clone())),
        tokio::spawn(crate::space_watch::watch(member.clone())),
        tokio::spawn(crate::auto_compact::run(member.clone(), auto_compaction)),
        tokio::spawn(crate::failover_groups::driver::run(member.clone(), env.hook_runner.clone(), heartbeat)),
        tokio::spawn(leader_loss::run(member.raft().clone(), loss_watch, append_streams)),
        tokio::spawn(crate::prober::run(member.raft().clone(), reach.clone(), reach_client, heartbeat)),
        tokio::spawn(crate::verdicts::run(member.clone(), reach, verdict_config, heartbeat)),
    ];
    background.push(tokio::spawn(member.clone().catch_up()));
    let discovery = crate::discovery::Discovery::new(member.clone(), client_addr.ip().to_string())?;
    background.push(tokio::spawn(discovery.clone().follow_through(crate::planted::discovery_lens(env.planted_bug))));
    discovery.set_relay(Box::new(Relay::new(check_inbox, check_client)));
    let check_stats = Arc::new(crate::check_runner::Stats::default());
    background.push(tokio::spawn(crate::check_runner::driver::run(
        discovery.clone(),
        net.clone(),
        check_deliveries,
        RunnerConfig::default(),
        check_stats.clone(),
    )));
    let dns_settings = member.config().dns_settings()?;
    let dns = dns_listener.map(|bound| crate::dns::DnsServer::serve(bound, discovery.clone(), dns_settings));
    let dns_addr = dns.as_ref().map(|d| d.addr);
    background.extend(dns.map(|d| tokio::spawn(d.run())));
    // Wall-clock tasks, only with TLS (never in the simulation).
    if let Some(tls) = &tls {
        background.push(tokio::spawn(tls.clone().watch(crate::tls::reload::POLL_EVERY)));
        background.push(tokio::spawn(crate::tls::expiry::warn_daily(tls.clone())));
    }

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let admin = admin_listener
        .map(|listener| serve_admin(listener, &member, &faults, tls.clone(), check_stats.clone()))
        .transpose()?;
    let admin_addr = admin.as_ref().map(|a| a.addr);
    let http = http_listener
        .map(|(addr, incoming)| {
            crate::consul_http::HttpServer::spawn(IncomingListener::new(incoming, addr), discovery.clone())
                .map_err(|e| Error::Listener(format!("listen-http {addr}: {e}")))
        })
        .transpose()?;
    let http_addr = http.as_ref().map(|h| h.addr);
    let serve = serve_clients(&member, date, max_decoding, env.planted_bug, incoming, shutdown_rx);
    tracing::info!(%client_addr, %peer_addr, member_id = %format!("{:x}", id.0), "serving the etcd v3 API");
    Ok(RunningServer {
        member,
        client_addr,
        peer_addr,
        admin_addr,
        dns_addr,
        http_addr,
        faults,
        tls,
        discovery,
        check_stats,
        admin,
        http,
        shutdown: Some(shutdown_tx),
        serve,
        background,
        life_end,
    })
}

/// The member's storage: the one the environment gives (the simulation's), or the data directory of the config,
/// created with the permissions it needs.
fn open_disk(config: &ServerConfig, given: Option<Arc<dyn Disk>>) -> Result<Arc<dyn Disk>> {
    if let Some(disk) = given {
        return Ok(disk);
    }
    let data_dir = |e: std::io::Error| Error::Config(format!("data dir {}: {e}", config.data_dir.display()));
    crate::data_dir::prepare(&config.data_dir).map_err(data_dir)?;
    OsDisk::shared(&config.data_dir).map_err(data_dir)
}

/// The TLS material of every link, when any link uses TLS; peers are accepted by the hosts `peer_hosts` names.
fn load_tls(config: &ServerConfig, peer_hosts: &Arc<MembershipHosts>) -> Result<Option<Arc<TlsReloader>>> {
    let settings = config.tls_settings();
    if !settings.any() {
        return Ok(None);
    }
    let tls = TlsReloader::load(settings, peer_hosts.clone()).map_err(|e| Error::Tls(Box::new(e)))?;
    Ok(Some(Arc::new(tls)))
}

/// How this member reaches the others: pooled channels (TLS when configured), and the transport Raft uses, which
/// passes every message through the WAN/fault emulation (with no links configured it passes straight on).
struct PeerStack {
    channels: Arc<PeerChannels>,
    faults: Arc<FaultState>,
    gate: Arc<FaultGate>,
    transport: Arc<dyn Transport>,
}

fn peer_stack(
    config: &ServerConfig,
    net: &Arc<dyn Network>,
    fault_seed: Option<u64>,
    topology: Option<&Topology>,
    id: meridian_types::NodeId,
    tls: &Option<Arc<TlsReloader>>,
) -> Result<PeerStack> {
    let channels = Arc::new(
        PeerChannels::over(PeerTimeouts::from_election_ms(config.timing.election_ms()), net.clone())
            .with_tls(tls.clone()),
    );
    let grpc: Arc<dyn Transport> = Arc::new(GrpcTransport::new(channels.clone()));
    let faults = Arc::new(crate::fault::initial_faults(topology)?);
    let gate = Arc::new(FaultGate::new(
        id,
        config.dc.clone(),
        faults.clone(),
        meridian_types::SplitMix64::new(fault_seed.unwrap_or(id.0)),
    ));
    let transport: Arc<dyn Transport> = Arc::new(FaultyTransport::new(grpc, gate.clone()));
    Ok(PeerStack { channels, faults, gate, transport })
}

/// The datacenter verdicts' windows for this timing and failback hold, and their quorum rule (the planted bug's,
/// chosen once here like every planted bug).
fn verdict_config(config: &ServerConfig, topology: Option<&Topology>, bug: PlantedBug) -> VerdictConfig {
    let hold = topology.map_or(meridian_types::topology::DEFAULT_FAILBACK_HOLD_MS, |t| t.policy.failback_hold_ms);
    VerdictConfig {
        quorum: if bug == PlantedBug::VerdictFromMinority { Quorum::LeaderAlone } else { Quorum::MajorityOutside },
        ..VerdictConfig::for_timing(config.timing.election_ms(), hold)
    }
}

/// Who is calling: the auth settings of the config, the client-certificate rule, and whether remote clients need
/// auth on.
fn authenticator(config: &ServerConfig, clock: Clock, seed: Option<u64>) -> Result<Arc<Authenticator>> {
    let authenticator =
        Authenticator::new(config.auth_settings()?, config.client_cert_auth, remote_needs_auth(config)?, clock, seed)
            .map_err(Error::Config)?;
    Ok(Arc::new(authenticator))
}

/// Serves the client port until `shutdown`: the etcd v3 gRPC services (the kv service with the planted bug's
/// decorator, if any) and etcd's JSON gateway, which shares the port (HTTP/1.1 requests, and any request outside
/// the gRPC services' paths, go to it).
fn serve_clients(
    member: &Arc<Member>,
    date: DateHeader,
    max_decoding: usize,
    bug: PlantedBug,
    incoming: Incoming,
    shutdown: oneshot::Receiver<()>,
) -> JoinHandle<std::result::Result<(), tonic::transport::Error>> {
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .layer(MapResponseLayer::new(move |res| date.apply(res)))
        .layer(MapResponseLayer::new(crate::grpc::oversize::as_grpc_go))
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(crate::gateway::router(member.clone(), max_decoding)))
        .add_service(WatchServer::new(WatchService::new(member.clone())).max_decoding_message_size(max_decoding))
        .add_service(LeaseServer::new(lease::LeaseService::new(member.clone())).max_decoding_message_size(max_decoding))
        .add_service(ClusterServer::new(ClusterService::new(member.clone())))
        .add_service(MaintenanceServer::new(MaintenanceService::new(member.clone())))
        .add_service(AuthServer::new(AuthService::new(member.clone())))
        .add_service(LockServer::new(LockService::new(member.clone())))
        .add_service(ElectionServer::new(ElectionService::new(member.clone())));
    let router = match bug {
        PlantedBug::StaleLinearizableReads
        | PlantedBug::SerializableReadsOneBehind
        | PlantedBug::ForwardedWritesSkipAuth => router
            .add_service(KvServer::new(PlantedKv::new(member.clone(), bug)).max_decoding_message_size(max_decoding)),
        _ => router.add_service(KvServer::new(KvService::new(member.clone())).max_decoding_message_size(max_decoding)),
    };
    // etcdctl's `endpoint` commands send a URL as the HTTP/2 :authority, which h2 refuses; repair it per
    // connection.
    let incoming = incoming.map(|accepted| accepted.map(AuthorityFix::new));
    tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown.await;
    }))
}

/// The HTTP `date` header of responses: hyper adds the wall-clock date unless one is present.
#[derive(Clone, Copy)]
struct DateHeader {
    fixed: bool,
}

impl DateHeader {
    /// The date every response carries when fixed (the Unix epoch).
    const FIXED: &'static str = "Thu, 01 Jan 1970 00:00:00 GMT";

    fn apply<B>(self, mut res: http::Response<B>) -> http::Response<B> {
        if self.fixed {
            res.headers_mut().insert(http::header::DATE, http::HeaderValue::from_static(Self::FIXED));
        }
        res
    }
}
