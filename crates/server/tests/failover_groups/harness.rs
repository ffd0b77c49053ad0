//! The fixture: one member with a failover group, a webhook receiver on 127.0.0.1, and the reads and writes of
//! the reserved keys the tests need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use meridian_failover::audit::{self, AuditEntry};
use meridian_failover::{ActiveRecord, DcState, VerdictRecord, rfc3339};
use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_server::failover_groups::HookRunner;
use meridian_server::{RunningServer, ServerConfig, ServerEnv};
use meridian_types::reserved::{active_key, dc_key, prefix_end};
use meridian_types::{DcName, GroupName, Revision, Topology};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any condition a test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A free loopback port (nothing listens there once returned).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The topology: voter a1 in dc-a, learners in dc-b and dc-c that never run, and `groups` (TOML) after it.
fn topology(hold_ms: u64, groups: &str) -> Topology {
    let mut text = format!("[policy]\nfailback_hold_ms = {hold_ms}\n");
    for (name, dc, role) in [("a1", "dc-a", "voter"), ("b1", "dc-b", "learner"), ("c1", "dc-c", "learner")] {
        text.push_str(&format!(
            "[[members]]\nname = \"{name}\"\ndc = \"{dc}\"\nzone = \"{dc}-1\"\nrole = \"{role}\"\n\
             peer_url = \"http://127.0.0.1:{}\"\nclient_url = \"http://127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ));
    }
    text.push_str(groups);
    Topology::from_toml(&text).unwrap()
}

/// A running member and its directory.
pub struct Fixture {
    pub server: RunningServer,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Starts a1 with `groups` (TOML `[[failover_groups]]` entries), hooks called by `runner`, and waits until it
    /// leads.
    pub async fn start(hold_ms: u64, groups: &str, runner: Arc<dyn HookRunner>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            name: "a1".into(),
            data_dir: dir.path().join("data"),
            listen_client: "http://127.0.0.1:0".into(),
            listen_peer: "http://127.0.0.1:0".into(),
            listen_admin: Some("http://127.0.0.1:0".into()),
            force_topology: true,
            ..Default::default()
        };
        let env = ServerEnv { topology: Some(topology(hold_ms, groups)), hook_runner: runner, ..Default::default() };
        let server = meridian_server::start_in(config, env).await.unwrap();
        let fixture = Fixture { server, _dir: dir };
        let member = &fixture.server.member;
        fixture.wait("a1 to lead", || async move { member.raft().status().is_leader.then_some(()) }).await;
        fixture
    }

    /// Polls `probe` until it yields a value, at most [`DEADLINE`].
    pub async fn wait<T, F: std::future::Future<Output = Option<T>>>(
        &self,
        what: &str,
        mut probe: impl FnMut() -> F,
    ) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `dc`'s verdict as the leader does (a command without caller).
    pub async fn verdict(&self, dc: &str, state: DcState, since_unix_ms: u64) {
        let record = VerdictRecord {
            dc: DcName::from(dc),
            state,
            since: rfc3339(since_unix_ms),
            since_unix_ms,
            term: self.server.member.raft().term(),
            evidence: Vec::new(),
        };
        self.put_raw(&dc_key(dc), record.to_json()).await;
    }

    /// Puts `value` at a reserved `key` as the server does.
    pub async fn put_raw(&self, key: &str, value: Vec<u8>) {
        let put = PutRequest { key: key.as_bytes().to_vec(), value, ..Default::default() };
        self.server
            .member
            .propose(RaftCommand { auth: None, cmd: Some(Cmd::Put(put)), ..Default::default() })
            .await
            .unwrap();
    }

    /// The group's active record and its token.
    pub fn active(&self, group: &str) -> Option<(ActiveRecord, Revision)> {
        let req = RangeRequest { key: active_key(group).into_bytes(), ..Default::default() };
        let kv = self.server.member.kv().read().range(&req).unwrap().kvs.into_iter().next()?;
        Some((ActiveRecord::parse(group, &kv.value).unwrap(), Revision(kv.mod_revision)))
    }

    /// Waits until the group is active in `dc` with a token other than `not`; returns the record and token.
    pub async fn wait_active(&self, group: &str, dc: &str, not: Option<Revision>) -> (ActiveRecord, Revision) {
        self.wait(&format!("{group} active in {dc}"), || async move {
            self.active(group).filter(|(r, t)| r.dc.0 == dc && Some(*t) != not)
        })
        .await
    }

    /// The audit log of `token` of `group`, in key order.
    pub fn audit(&self, group: &str, token: Revision) -> Vec<AuditEntry> {
        let prefix = audit::token_prefix(&GroupName::from(group), token);
        let req =
            RangeRequest { key: prefix.clone().into_bytes(), range_end: prefix_end(&prefix), ..Default::default() };
        let kvs = self.server.member.kv().read().range(&req).unwrap().kvs;
        kvs.iter().map(|kv| AuditEntry::parse(&String::from_utf8_lossy(&kv.key), &kv.value).unwrap()).collect()
    }

    /// Waits for the ack marker of `token`; returns the whole log of the token.
    pub async fn wait_acknowledged(&self, group: &str, token: Revision) -> Vec<AuditEntry> {
        self.wait(&format!("the ack marker of {group} token {}", token.0), || async move {
            let log = self.audit(group, token);
            log.iter().any(|e| matches!(e, AuditEntry::Ack(_))).then_some(log)
        })
        .await
    }

    /// The admin listener.
    pub fn admin(&self) -> SocketAddr {
        self.server.admin_addr.unwrap()
    }

    pub async fn stop(self) {
        self.server.stop().await.unwrap();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the status code and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), body.to_owned())
}

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// 200.
    Ok,
    /// 500.
    Fail,
    /// Never answers.
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    script: Arc<Mutex<std::collections::VecDeque<Reply>>>,
}

/// A webhook receiver on 127.0.0.1: records every body, answers from its script, then 200.
pub struct Webhook {
    pub url: String,
    receiver: Receiver,
    _task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    pub async fn start(script: &[Reply]) -> Webhook {
        let receiver = Receiver::default();
        receiver.script.lock().extend(script.iter().copied());
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, receiver, _task: task }
    }

    /// A receiver over TLS at `https://localhost:<port>/hook`, with a certificate for `localhost` from a CA made
    /// for it, whose PEM is written to `dir/ca.pem` (returned).
    pub async fn start_tls(script: &[Reply], dir: &std::path::Path) -> (Webhook, std::path::PathBuf) {
        let receiver = Receiver::default();
        receiver.script.lock().extend(script.iter().copied());
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let (ca_pem, chain, key) = tls_identity("localhost");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(meridian_server::tls::material::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://localhost:{}/hook", listener.local_addr().unwrap().port());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends its handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (Webhook { url, receiver, _task: task }, ca)
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.receiver.bodies.lock().clone()
    }

    /// The tokens received so far, in order.
    pub fn tokens(&self) -> Vec<i64> {
        self.bodies().iter().map(|b| b["token"].as_i64().unwrap()).collect()
    }
}

async fn receive(State(r): State<Receiver>, body: axum::body::Bytes) -> StatusCode {
    r.bodies.lock().push(serde_json::from_slice(&body).unwrap());
    let reply = r.script.lock().pop_front().unwrap_or(Reply::Ok);
    match reply {
        Reply::Ok => StatusCode::OK,
        Reply::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Reply::Hang => std::future::pending().await,
    }
}

/// Now, as the member's clock says (the verdicts' `since`).
pub fn now_ms(f: &Fixture) -> u64 {
    f.server.member.failover().now_unix_ms()
}

/// A CA (its PEM) and a certificate for `host` it signed, with the key.
pub fn tls_identity(
    host: &str,
) -> (String, Vec<rustls_pki_types::CertificateDer<'static>>, rustls_pki_types::PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (ca.pem(), vec![cert.der().clone()], key)
}
