//! Check runners against real servers: three in-process members of one datacenter (real sockets, real Raft),
//! instances registered through `RunningServer.discovery`, and small HTTP servers on 127.0.0.1 whose health the
//! tests flip. What is checked is the published state in the members' catalogs (what HTTP and DNS answer from):
//! - an HTTP check follows its endpoint: critical within interval × failure threshold (plus slack) after it
//!   starts answering 500, passing again after it recovers; a TCP check of a closed port is critical;
//! - a gRPC check follows `grpc.health.v1.Health/Check`: `SERVING` passing, `NOT_SERVING` critical;
//! - an `https://` check of a self-signed endpoint passes with `TLSSkipVerify` and is critical without it, its
//!   output saying the certificate was refused;
//! - a TTL check with no report turns critical after its TTL; reports sent to any member (runner or not) keep it
//!   passing, without a single write through the log while its state does not change;
//! - killing the member that runs a check (stopped, and cut off: see [`Cluster::kill`]) hands the check to
//!   another, which still sees the endpoint fail and recover.
//!
//! Conditions are polled with bounded deadlines; nothing sleeps to synchronise. The scenarios take a lock so
//! their clusters do not compete for the machine's cores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use meridian_proto::grpc_health_v1::health_check_response::ServingStatus;
use meridian_proto::grpc_health_v1::health_server::{Health, HealthServer};
use meridian_proto::grpc_health_v1::{HealthCheckRequest, HealthCheckResponse};
use meridian_registry::consul::parse_register;
use meridian_registry::{CheckRef, Outcome, Registration, Status};
use meridian_server::{RunningServer, ServerConfig, ServerEnv};
use meridian_types::Topology;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the cluster may take to elect a leader and load its catalogs.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Slack over a check's own timing: the proposal, the catalog's watch, a loaded machine.
const SLACK: Duration = Duration::from_secs(4);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Three voters in dc-a, zone z1, so any of them may run any instance's checks.
fn topology() -> Topology {
    let mut text = String::new();
    for name in ["a1", "a2", "a3"] {
        text.push_str(&format!(
            "[[members]]\nname = \"{name}\"\ndc = \"dc-a\"\nzone = \"z1\"\nrole = \"voter\"\n\
             peer_url = \"http://127.0.0.1:{}\"\nclient_url = \"http://127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ));
    }
    Topology::from_toml(&text).unwrap()
}

/// The running members (a stopped one is `None`) and their directories.
struct Cluster {
    servers: Vec<Option<RunningServer>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        let topology = topology();
        let mut servers = Vec::new();
        let mut dirs = Vec::new();
        for name in ["a1", "a2", "a3"] {
            let dir = tempfile::tempdir().unwrap();
            let config = ServerConfig {
                name: name.into(),
                data_dir: dir.path().join("data"),
                force_topology: true,
                ..Default::default()
            };
            let env = ServerEnv { topology: Some(topology.clone()), ..Default::default() };
            servers.push(Some(meridian_server::start_in(config, env).await.unwrap()));
            dirs.push(dir);
        }
        let cluster = Cluster { servers, _dirs: dirs };
        wait_for("a leader", START_DEADLINE, || {
            cluster.running().any(|s| s.member.raft().status().is_leader).then_some(())
        })
        .await;
        for s in cluster.running() {
            tokio::time::timeout(START_DEADLINE, s.discovery.live().wait_loaded()).await.expect("catalog loaded");
        }
        cluster
    }

    fn running(&self) -> impl Iterator<Item = &RunningServer> {
        self.servers.iter().flatten()
    }

    fn server(&self, i: usize) -> &RunningServer {
        self.servers[i].as_ref().expect("running")
    }

    /// Registers the Consul registration `json` through member `i`.
    async fn register(&self, i: usize, json: &str) -> Registration {
        let discovery = &self.server(i).discovery;
        let reg = parse_register(json.as_bytes(), discovery.agent()).unwrap();
        // A registration may race the first election's aftermath: retry until the log takes it.
        let end = Instant::now() + START_DEADLINE;
        loop {
            match discovery.register(&reg).await {
                Ok(_) => return reg,
                Err(e) => assert!(Instant::now() < end, "registering: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The published status of `check` and its record's modify revision, as every running member's catalog
    /// has it, if they all agree.
    fn published(&self, check: &CheckRef) -> Option<(Status, i64)> {
        let mut seen = self.running().map(|s| {
            let catalog = s.discovery.live().read();
            catalog.check(&check.instance, &check.check).map(|(r, i)| (r.status, i.modify))
        });
        let first = seen.next()??;
        seen.all(|s| s == Some(first)).then_some(first)
    }

    async fn wait_status(&self, check: &CheckRef, want: Status, within: Duration) -> Duration {
        let start = Instant::now();
        wait_for(&format!("{check} {want}"), within, || self.published(check).filter(|(s, _)| *s == want).map(|_| ()))
            .await;
        start.elapsed()
    }

    /// The index of the member running `count` checks or more (the runner of a lone instance).
    fn runner(&self) -> Option<usize> {
        let runs = |s: &RunningServer| s.check_stats.checks_run.load(Ordering::Relaxed);
        let busy: Vec<usize> =
            (0..self.servers.len()).filter(|i| self.servers[*i].as_ref().is_some_and(|s| runs(s) > 0)).collect();
        (busy.len() == 1).then(|| busy[0])
    }

    async fn stop(&mut self, i: usize) {
        self.servers[i].take().expect("running").stop().await.unwrap();
    }

    /// Kills member `i` as far as the others can tell. Stopping an in-process server closes its listeners but
    /// not the peer connections it already accepted (their tasks outlive the listener's), over which it would
    /// go on answering reachability probes; a dead process closes them all. So the survivors also cut it off
    /// through their fault gates (`isolated_members`) before it is stopped.
    async fn kill(&mut self, i: usize) {
        let id = self.server(i).member.id();
        for s in self.running() {
            let mut faults = s.faults.get();
            faults.isolated_members.insert(id);
            s.faults.set(faults).unwrap();
        }
        self.stop(i).await;
    }

    async fn stop_all(mut self) {
        for i in 0..self.servers.len() {
            if self.servers[i].is_some() {
                self.stop(i).await;
            }
        }
    }
}

/// Polls `probe` until it yields, at most `within`.
async fn wait_for<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An HTTP endpoint answering every request with the status it is set to.
struct Endpoint {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
}

impl Endpoint {
    async fn start() -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let code = answer.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = format!("status {code}");
                    let response = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Endpoint { addr, status }
    }

    fn set(&self, code: u16) {
        self.status.store(code, Ordering::Relaxed);
    }
}

fn check_of(reg: &Registration) -> CheckRef {
    reg.check_ref(&reg.checks[0].id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_follow_their_endpoint_and_a_closed_port_is_critical() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let endpoint = Endpoint::start().await;
    let web = cluster
        .register(
            0,
            &format!(
                r#"{{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":{},
                    "Check":{{"CheckID":"http","HTTP":"http://{}/health","Interval":"1s","FailuresBeforeCritical":2}}}}"#,
                endpoint.addr.port(),
                endpoint.addr
            ),
        )
        .await;
    let closed = free_port();
    let tcp = cluster
        .register(
            1,
            &format!(
                r#"{{"Name":"db","ID":"db-1","Address":"127.0.0.1","Port":{closed},
                    "Check":{{"CheckID":"tcp","TCP":"127.0.0.1:{closed}","Interval":"1s","Status":"passing"}}}}"#
            ),
        )
        .await;
    let (web, tcp) = (check_of(&web), check_of(&tcp));
    // Starts critical (Consul's default), passes at the first probe.
    cluster.wait_status(&web, Status::Passing, Duration::from_secs(1) + SLACK).await;
    cluster.wait_status(&tcp, Status::Critical, Duration::from_secs(1) + SLACK).await;

    endpoint.set(500);
    let took = cluster.wait_status(&web, Status::Critical, Duration::from_secs(2) + SLACK).await;
    eprintln!("500 seen as critical after {took:?}");
    endpoint.set(200);
    cluster.wait_status(&web, Status::Passing, Duration::from_secs(1) + SLACK).await;
    let catalog_record = cluster.published(&web).unwrap();
    assert_eq!(catalog_record.0, Status::Passing);
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_checks_expire_without_reports_and_reports_to_any_member_keep_them_passing() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let reg = cluster
        .register(
            2,
            r#"{"Name":"batch","ID":"batch-1","Address":"127.0.0.1","Port":9,
                "Check":{"CheckID":"ttl","TTL":"2s","Status":"passing"}}"#,
        )
        .await;
    let check = check_of(&reg);
    // No report: critical once the TTL is over.
    cluster.wait_status(&check, Status::Critical, Duration::from_secs(2) + SLACK).await;

    // Reports through every member in turn, the runner and the others, for three TTLs.
    let report = |i: usize| {
        let (discovery, check) = (cluster.server(i).discovery.clone(), check.clone());
        async move { discovery.report_ttl(&check, Outcome::Pass, "fine".into()).await.unwrap() }
    };
    report(0).await;
    cluster.wait_status(&check, Status::Passing, SLACK).await;
    let (_, revision) = cluster.published(&check).unwrap();
    let forwarded_before: u64 = cluster.running().map(|s| s.check_stats.reports.load(Ordering::Relaxed)).sum();
    let end = Instant::now() + Duration::from_secs(6);
    let mut sent = 0;
    while Instant::now() < end {
        report(sent % 3).await;
        sent += 1;
        // Never critical meanwhile, and nothing written: the state did not change.
        let seen = cluster.running().map(|s| {
            let catalog = s.discovery.live().read();
            catalog.check(&check.instance, &check.check).map(|(r, i)| (r.status, i.modify))
        });
        for s in seen {
            assert_eq!(s, Some((Status::Passing, revision)), "after {sent} reports");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let forwarded: u64 = cluster.running().map(|s| s.check_stats.reports.load(Ordering::Relaxed)).sum();
    assert_eq!(forwarded - forwarded_before, sent as u64, "every report reached the runner");

    // Reports stop: critical again after the TTL.
    cluster.wait_status(&check, Status::Critical, Duration::from_secs(2) + SLACK).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_of_a_stopped_runner_move_to_another_member() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let endpoint = Endpoint::start().await;
    let reg = cluster
        .register(
            0,
            &format!(
                r#"{{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":{},
                    "Check":{{"CheckID":"http","HTTP":"http://{}/","Interval":"1s"}}}}"#,
                endpoint.addr.port(),
                endpoint.addr
            ),
        )
        .await;
    let check = check_of(&reg);
    cluster.wait_status(&check, Status::Passing, Duration::from_secs(1) + SLACK).await;
    let runner = wait_for("exactly one runner", SLACK, || cluster.runner()).await;
    cluster.kill(runner).await;

    // Another member takes the check over (once it finds the runner unreachable) and sees the flip.
    let heir = wait_for("a new runner", START_DEADLINE, || cluster.runner()).await;
    assert_ne!(heir, runner);
    endpoint.set(503);
    cluster.wait_status(&check, Status::Critical, Duration::from_secs(1) + SLACK).await;
    endpoint.set(200);
    cluster.wait_status(&check, Status::Passing, Duration::from_secs(1) + SLACK).await;
    cluster.stop_all().await;
}

/// A `grpc.health.v1` server whose answer the test sets.
struct GrpcHealth {
    addr: SocketAddr,
    serving: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone)]
struct HealthService(Arc<std::sync::atomic::AtomicBool>);

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        assert_eq!(request.get_ref().service, "orders", "the check's service is asked about");
        let status = if self.0.load(Ordering::Relaxed) { ServingStatus::Serving } else { ServingStatus::NotServing };
        Ok(tonic::Response::new(HealthCheckResponse { status: status as i32 }))
    }
}

impl GrpcHealth {
    async fn start() -> GrpcHealth {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let service = HealthServer::new(HealthService(serving.clone()));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        GrpcHealth { addr, serving }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_checks_follow_the_health_service() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let health = GrpcHealth::start().await;
    let reg = cluster
        .register(
            1,
            &format!(
                r#"{{"Name":"orders","ID":"orders-1","Address":"127.0.0.1","Port":{},
                    "Check":{{"CheckID":"grpc","GRPC":"{}/orders","Interval":"1s"}}}}"#,
                health.addr.port(),
                health.addr
            ),
        )
        .await;
    let check = check_of(&reg);
    cluster.wait_status(&check, Status::Passing, Duration::from_secs(1) + SLACK).await;
    health.serving.store(false, Ordering::Relaxed);
    cluster.wait_status(&check, Status::Critical, Duration::from_secs(1) + SLACK).await;
    health.serving.store(true, Ordering::Relaxed);
    cluster.wait_status(&check, Status::Passing, Duration::from_secs(1) + SLACK).await;
    cluster.stop_all().await;
}

/// An HTTPS endpoint with a self-signed certificate for 127.0.0.1, answering 200 to every request.
async fn https_endpoint() -> SocketAddr {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let chain = vec![cert.cert.der().clone()];
    let key = rustls_pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    // ring, as the server uses (its default provider is deprecated for lacking post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to answer then.
                let Ok(mut stream) = acceptor.accept(stream).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure";
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_verify_the_certificate_unless_told_to_skip() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let addr = https_endpoint().await;
    let register = |id: &str, skip: bool, initial: &str| {
        format!(
            r#"{{"Name":"tls","ID":"{id}","Address":"127.0.0.1","Port":{},
                "Check":{{"CheckID":"https","HTTP":"https://{addr}/health","Interval":"1s",
                "TLSSkipVerify":{skip},"Status":"{initial}"}}}}"#,
            addr.port()
        )
    };
    let skipping = check_of(&cluster.register(0, &register("tls-skip", true, "critical")).await);
    let verifying = check_of(&cluster.register(1, &register("tls-verify", false, "passing")).await);
    cluster.wait_status(&skipping, Status::Passing, Duration::from_secs(1) + SLACK).await;
    cluster.wait_status(&verifying, Status::Critical, Duration::from_secs(1) + SLACK).await;
    let output = |check: &CheckRef| {
        let catalog = cluster.server(0).discovery.live().read();
        catalog.check(&check.instance, &check.check).map(|(r, _)| r.output.clone()).unwrap_or_default()
    };
    assert!(output(&skipping).contains("200"), "the answer is judged: {:?}", output(&skipping));
    assert!(
        output(&verifying).contains("certificate"),
        "a self-signed certificate is refused, saying why: {:?}",
        output(&verifying)
    );
    cluster.stop_all().await;
}
