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
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::failover_catalog::{Catalog, FailoverGroups};
use crate::failover_groups::{HookRunner, ProcessHooks};
use crate::fault::{FaultGate, FaultState, FaultyTransport};
use crate::formation::{self, ClusterPlan};
use crate::grpc::{
    auth::AuthService, cluster::ClusterService, election::ElectionService, kv::KvService, lease, lock::LockService,
    maintenance::MaintenanceService, watch::WatchService,
};
use crate::h2_authority::AuthorityFix;
use crate::leader_loss::{self, AppendStreams, LeaderLossWatch};
use crate::lessor::Lessor;
use crate::member::{HeaderInfo, Member, MemberParts};
use crate::net::{Incoming, Network, TcpNetwork};
use crate::peer_client::channels::{PeerChannels, PeerTimeouts};
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
use crate::tls::reload::Reloaded;
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
fn serve_peers(member: Arc<Member>, streams: AppendStreams, date: DateHeader, incoming: Incoming) -> JoinHandle<()> {
    let router = tonic::transport::Server::builder()
        .layer(MapResponseLayer::new(move |res| date.apply(res)))
        .add_service(PeerService::server(member, streams));
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
        Ok(Listeners { client_addr, incoming, peer_addr, peer_incoming, admin })
    }
}

/// Serves the admin HTTP API on `listener`; `/faults` only when fault injection is enabled. A token, TLS or a
/// non-loopback listener puts the API behind the bearer token (`/health` and `/metrics` may stay open).
fn serve_admin(
    (addr, incoming): (SocketAddr, Incoming),
    member: &Arc<Member>,
    faults: &Arc<FaultState>,
    tls: Option<Arc<TlsReloader>>,
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
    };
    AdminServer::spawn(IncomingListener::new(incoming, addr), state).map_err(|e| Error::Listener(format!("admin: {e}")))
}

/// Whether a client listener beyond loopback must wait for auth before serving remote clients: yes, unless
/// client certificates gate it or the operator chose `--insecure-allow-remote`.
fn remote_needs_auth(config: &ServerConfig) -> Result<bool> {
    Ok(!config.client_addr()?.ip().is_loopback() && !config.client_cert_auth && !config.insecure_allow_remote)
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

/// A running member and the handle to stop it.
pub struct RunningServer {
    /// The member's shared state.
    pub member: Arc<Member>,
    /// The address the client API listens on.
    pub client_addr: SocketAddr,
    /// The address the peer service listens on.
    pub peer_addr: SocketAddr,
    /// The address the admin HTTP API listens on, when enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The emulated network applied to this member's outgoing peer messages.
    pub faults: Arc<FaultState>,
    /// The member's TLS configuration, when any link uses TLS ([`RunningServer::reload_tls`] re-reads it).
    pub tls: Option<Arc<TlsReloader>>,
    admin: Option<AdminServer>,
    shutdown: Option<oneshot::Sender<()>>,
    serve: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    background: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Serves until the client listener fails or [`RunningServer::stop`] is called elsewhere.
    pub async fn wait(mut self) -> Result<()> {
        let served = (&mut self.serve).await;
        self.finish().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Listener(e.to_string())),
            Err(e) => Err(Error::Listener(e.to_string())),
        }
    }

    /// Re-reads the TLS files now (as on SIGHUP); `None` without TLS.
    pub fn reload_tls(&self) -> Option<Reloaded> {
        self.tls.as_ref().map(|tls| tls.reload())
    }

    /// Stops serving and shuts the Raft node down cleanly.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.serve).await;
        self.finish().await;
        Ok(())
    }

    async fn finish(&mut self) {
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Err(e) = self.member.raft().shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
    }
}

/// What a member runs on: its network, its disk and its clock. A real server takes the defaults
/// (TCP, the configured data directory, the true clock); the simulation substitutes each.
pub struct ServerEnv {
    /// Listening and dialling (the admin HTTP listener always uses TCP).
    pub net: Arc<dyn Network>,
    /// Storage; `None` = the data directory of the config.
    pub disk: Option<Arc<dyn Disk>>,
    /// The clock of the lease timer and the placement driver.
    pub clock: Clock,
    /// Seed of the fault-emulation randomness; `None` = derived from the member id.
    pub fault_seed: Option<u64>,
    /// The cluster topology itself, instead of the file named by the config.
    pub topology: Option<Topology>,
    /// A deliberate bug for the simulation's checker to find; [`PlantedBug::None`] otherwise.
    pub planted_bug: PlantedBug,
    /// Seed of the authenticator's salts and tokens, which also hashes passwords inline; `None` (a real
    /// server) draws them from the operating system and hashes on blocking threads.
    pub auth_seed: Option<u64>,
    /// Send a constant HTTP `date` header instead of hyper's wall-clock one, so responses do not
    /// depend on the real time (the simulation's replay needs byte-identical traffic; gRPC clients
    /// ignore the header).
    pub fixed_date_header: bool,
    /// What calls the failover groups' hooks: webhooks and commands in a real server
    /// ([`ProcessHooks`]), a recording fake in the simulation.
    pub hook_runner: Arc<dyn HookRunner>,
}

impl Default for ServerEnv {
    fn default() -> Self {
        ServerEnv {
            net: Arc::new(TcpNetwork),
            disk: None,
            clock: Clock::new(),
            fault_seed: None,
            topology: None,
            planted_bug: PlantedBug::None,
            auth_seed: None,
            fixed_date_header: false,
            hook_runner: Arc::new(ProcessHooks),
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
    let disk = match env.disk {
        Some(disk) => disk,
        None => {
            crate::data_dir::prepare(&config.data_dir)
                .map_err(|e| Error::Config(format!("data dir {}: {e}", config.data_dir.display())))?;
            OsDisk::shared(&config.data_dir)
                .map_err(|e| Error::Config(format!("data dir {}: {e}", config.data_dir.display())))?
        }
    };
    // Before this member knows a membership, the peers it accepts are the topology's.
    let peer_hosts =
        Arc::new(MembershipHosts::new(topology.iter().flat_map(|t| t.members.iter().map(|m| m.peer_url.clone()))));
    let tls_settings = config.tls_settings();
    let tls = match tls_settings.any() {
        true => {
            Some(Arc::new(TlsReloader::load(tls_settings, peer_hosts.clone()).map_err(|e| Error::Tls(Box::new(e)))?))
        }
        false => None,
    };
    let Listeners { client_addr, incoming, peer_addr, peer_incoming, admin: admin_listener } =
        Listeners::bind(&config, &*env.net, tls.as_ref()).await?;

    let id = plan.id;
    let cluster_id = plan.cluster_id;
    let node_config = node_config(&config, plan, disk, env.planted_bug);
    let heartbeat = Duration::from_millis(node_config.heartbeat_ms);
    let placement_config = placement::placement_config(
        &topology.as_ref().map(|t| t.policy.clone()).unwrap_or_default(),
        node_config.election_max_ms,
    );
    let channels = Arc::new(
        PeerChannels::over(PeerTimeouts::from_election_ms(config.timing.election_ms()), env.net.clone())
            .with_tls(tls.clone()),
    );
    let grpc: Arc<dyn Transport> = Arc::new(GrpcTransport::new(channels.clone()));
    // Every peer message goes through the WAN/fault emulation; with no links configured it passes straight on.
    let faults = Arc::new(crate::fault::initial_faults(topology.as_ref())?);
    let gate = Arc::new(FaultGate::new(
        id,
        config.dc.clone(),
        faults.clone(),
        meridian_types::SplitMix64::new(env.fault_seed.unwrap_or(id.0)),
    ));
    let transport: Arc<dyn Transport> = Arc::new(FaultyTransport::new(grpc, gate.clone()));
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
    let leader_client = LeaderClient::new(channels).with_fault_gate(gate);
    let reach = Arc::new(ReachState::new(
        id,
        env.clock,
        ReachConfig::for_timing(config.timing.heartbeat_ms(), config.timing.election_ms()),
    ));
    let verdict_config = VerdictConfig {
        // The planted bug's rule, chosen once here like every planted bug.
        quorum: if env.planted_bug == PlantedBug::VerdictFromMinority {
            Quorum::LeaderAlone
        } else {
            Quorum::MajorityOutside
        },
        ..VerdictConfig::for_timing(
            config.timing.election_ms(),
            topology
                .as_ref()
                .map(|t| t.policy.failback_hold_ms)
                .unwrap_or(meridian_types::topology::DEFAULT_FAILBACK_HOLD_MS),
        )
    };
    let placement = PlacementHandle::new();
    let failover = FailoverGroups::new(Catalog::new(topology.as_ref(), &config.dc), env.clock);
    let quota_bytes = config.quota_bytes();
    let auto_compaction = config.auto_compaction()?;
    if quota_bytes > crate::config::MAX_RECOMMENDED_QUOTA_BACKEND_BYTES {
        tracing::warn!(quota = quota_bytes, "quota-backend-bytes above 8 GiB: a database that large may be slow");
    }
    let authenticator = Arc::new(
        Authenticator::new(
            config.auth_settings()?,
            config.client_cert_auth,
            remote_needs_auth(&config)?,
            env.clock,
            env.auth_seed,
        )
        .map_err(Error::Config)?,
    );
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
        net: env.net.clone(),
        preference: topology.as_ref().map(|t| t.policy.leader_preference.clone()).unwrap_or_default(),
        step: heartbeat,
        election: Duration::from_millis(member.config().timing.election_ms()),
    };

    let date = DateHeader { fixed: env.fixed_date_header };
    let peer_serve = serve_peers(member.clone(), append_streams.clone(), date, peer_incoming);

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
    // Wall-clock tasks, only with TLS (never in the simulation).
    if let Some(tls) = &tls {
        background.push(tokio::spawn(tls.clone().watch(crate::tls::reload::POLL_EVERY)));
        background.push(tokio::spawn(crate::tls::expiry::warn_daily(tls.clone())));
    }

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .layer(MapResponseLayer::new(move |res| date.apply(res)))
        .layer(MapResponseLayer::new(crate::grpc::oversize::as_grpc_go))
        // etcd's JSON gateway shares the client port: HTTP/1.1 requests, and any request outside the gRPC
        // services' paths, go to it.
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(crate::gateway::router(member.clone(), max_decoding)))
        .add_service(WatchServer::new(WatchService::new(member.clone())).max_decoding_message_size(max_decoding))
        .add_service(LeaseServer::new(lease::LeaseService::new(member.clone())).max_decoding_message_size(max_decoding))
        .add_service(ClusterServer::new(ClusterService::new(member.clone())))
        .add_service(MaintenanceServer::new(MaintenanceService::new(member.clone())))
        .add_service(AuthServer::new(AuthService::new(member.clone())))
        .add_service(LockServer::new(LockService::new(member.clone())))
        .add_service(ElectionServer::new(ElectionService::new(member.clone())));
    let router = match env.planted_bug {
        PlantedBug::StaleLinearizableReads
        | PlantedBug::SerializableReadsOneBehind
        | PlantedBug::ForwardedWritesSkipAuth => router.add_service(
            KvServer::new(PlantedKv::new(member.clone(), env.planted_bug)).max_decoding_message_size(max_decoding),
        ),
        _ => router.add_service(KvServer::new(KvService::new(member.clone())).max_decoding_message_size(max_decoding)),
    };
    // etcdctl's `endpoint` commands send a URL as the HTTP/2 :authority, which h2 refuses; repair it per
    // connection.
    let incoming = incoming.map(|accepted| accepted.map(AuthorityFix::new));
    let admin = admin_listener.map(|listener| serve_admin(listener, &member, &faults, tls.clone())).transpose()?;
    let admin_addr = admin.as_ref().map(|a| a.addr);
    let serve = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown_rx.await;
    }));
    tracing::info!(%client_addr, %peer_addr, member_id = %format!("{:x}", id.0), "serving the etcd v3 API");
    Ok(RunningServer {
        member,
        client_addr,
        peer_addr,
        admin_addr,
        faults,
        tls,
        admin,
        shutdown: Some(shutdown_tx),
        serve,
        background,
    })
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
