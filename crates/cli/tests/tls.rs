//! TLS and mutual TLS on every link of real `meridian server` processes over loopback: etcdctl and the
//! etcd-client crate with client certificates, a three-member cluster with peer TLS (hosts 127.0.0.1/.2/.3, so
//! the peer certificates' SANs differ), the peer identity rule (another CA, an expired certificate, a client
//! certificate, a removed member's certificate, a member presenting another member's certificate), rotation
//! without restart, bad input on both kinds of port, the admin API over HTTPS with a token, and the
//! secure-by-default startup checks.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::tls::{Ca, Pair, Pki, Proc, Usage, client_config, etcdctl_tls, handshake, https, tls_flags};
use common::{WatchProc, etcdctl, free_port, poll_until};

const DEADLINE: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(100);
const ADMIN_TOKEN: &str = "s3cret-admin-token";

/// etcdctl against `endpoint` with the TLS `flags` and then `args`.
fn ctl(endpoint: &str, flags: &[String], args: &[&str]) -> common::Output {
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend(["--dial-timeout=2s", "--command-timeout=5s"]);
    all.extend(args);
    etcdctl(endpoint, &all, None)
}

fn addr(host: &str, port: u16) -> SocketAddr {
    format!("{host}:{port}").parse().unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Logs must never carry key material.
fn assert_no_key_material(log: &str, keys: &[&Path]) {
    assert!(!log.contains("PRIVATE KEY"), "a private key in the log");
    for key in keys {
        let pem = std::fs::read_to_string(key).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 20) {
            assert!(!log.contains(line), "key material of {} in the log", key.display());
        }
    }
}

/// One member, TLS on the client and admin listeners (client certificates required), plain peer listener.
struct Single {
    dir: tempfile::TempDir,
    pki: Pki,
    proc: Proc,
    client_port: u16,
    peer_port: u16,
    admin_port: u16,
    root: Pair,
    server: Pair,
}

impl Single {
    fn start(client_cert_auth: bool) -> Single {
        let dir = tempfile::Builder::new().prefix("meridian-tls-").tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"));
        let certs = pki.member("default", "127.0.0.1");
        let root = pki.client("root");
        let (client_port, peer_port, admin_port) = (free_port(), free_port(), free_port());
        let mut a = args(&["--name", "default", "--admin-token", ADMIN_TOKEN]);
        a.extend([
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
            "--listen-client".into(),
            format!("https://127.0.0.1:{client_port}"),
            "--listen-peer".into(),
            format!("http://127.0.0.1:{peer_port}"),
            "--listen-admin".into(),
            format!("https://127.0.0.1:{admin_port}"),
            "--cert-file".into(),
            certs.server.crt.display().to_string(),
            "--key-file".into(),
            certs.server.key.display().to_string(),
            "--trusted-ca-file".into(),
            pki.ca.crt.display().to_string(),
        ]);
        if client_cert_auth {
            a.push("--client-cert-auth".into());
        }
        let proc = Proc::spawn(&a, &dir.path().join("server.log"));
        let single = Single { dir, pki, proc, client_port, peer_port, admin_port, root, server: certs.server };
        let flags = single.flags();
        let ready = poll_until(DEADLINE, EVERY, || ctl(&single.endpoint(), &flags, &["put", "ready", "1"]).ok());
        assert!(ready, "TLS member never served a put:\n{}", single.proc.log_text());
        single
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    fn flags(&self) -> Vec<String> {
        etcdctl_tls(&self.pki.ca.crt, Some(&self.root))
    }
}

#[test]
fn etcdctl_with_client_certificates_and_a_refused_client_without_one() {
    let mut m = Single::start(true);
    let (ep, flags) = (m.endpoint(), m.flags());
    let put = ctl(&ep, &flags, &["put", "greeting", "hello"]);
    assert!(put.ok(), "put over TLS: {put:?}");
    let get = ctl(&ep, &flags, &["get", "greeting", "--print-value-only"]);
    assert_eq!(get.stdout.trim(), "hello", "{get:?}");
    let status = ctl(&ep, &flags, &["endpoint", "status"]);
    assert!(status.ok() && status.stdout.contains(&ep), "{status:?}");

    // No client certificate while --client-cert-auth requires one: the handshake fails, nothing panics.
    let anonymous = ctl(&ep, &etcdctl_tls(&m.pki.ca.crt, None), &["put", "k", "v"]);
    assert!(!anonymous.ok(), "a client without a certificate was served: {anonymous:?}");
    let raw = handshake(addr("127.0.0.1", m.client_port), "127.0.0.1", client_config(&m.pki.ca.crt, None, &[b"h2"]));
    assert!(raw.is_err(), "a raw handshake without a client certificate succeeded");
    // Client certificates of the right CA outside their validity are refused at the handshake.
    let dir = m.dir.path().join("pki");
    let expired = m.pki.ca.issue_expired(&dir, "old-client", "root", &[], Usage::Client);
    let future = m.pki.ca.issue_not_yet_valid(&dir, "future-client", "root", &[], Usage::Client);
    for (what, pair) in [("expired", &expired), ("not yet valid", &future)] {
        let refused = ctl(&ep, &etcdctl_tls(&m.pki.ca.crt, Some(pair)), &["--dial-timeout=2s", "put", "k", "v"]);
        assert!(!refused.ok(), "an {what} client certificate was served: {refused:?}");
    }
    // Plain-text gRPC to the TLS port fails; TLS to the plain peer port fails; the member goes on serving.
    let plain = ctl(&format!("http://127.0.0.1:{}", m.client_port), &[], &["put", "k", "v"]);
    assert!(!plain.ok(), "plain text was served on a TLS port: {plain:?}");
    let tls_to_plain =
        handshake(addr("127.0.0.1", m.peer_port), "127.0.0.1", client_config(&m.pki.ca.crt, Some(&m.root), &[b"h2"]));
    let err = tls_to_plain.expect_err("TLS to a plain port succeeded");
    assert!(err.contains("handshake"), "{err}");
    let again = ctl(&ep, &flags, &["get", "greeting", "--print-value-only"]);
    assert_eq!(again.stdout.trim(), "hello", "the member stopped serving after bad connections: {again:?}");
    assert!(m.proc.running(), "the member exited");
    let log = m.proc.log_text();
    assert!(log.contains("TLS handshake failed"), "handshake failures are logged:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_no_key_material(&log, &[&m.server.key, &m.root.key]);

    // The data dir the server created is private.
    let mode = std::fs::metadata(m.dir.path().join("data")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data dir mode {mode:o}");
}

#[test]
fn sighup_rereads_the_tls_files_and_the_member_serves_on() {
    let m = Single::start(false);
    let pid = m.proc.pid().expect("running").to_string();
    let hup = std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("run kill");
    assert!(hup.success());
    assert!(
        poll_until(DEADLINE, EVERY, || m.proc.log_text().contains("SIGHUP: TLS files re-read")),
        "SIGHUP did not re-read the files:\n{}",
        m.proc.log_text()
    );
    let get = ctl(&m.endpoint(), &m.flags(), &["get", "ready", "--print-value-only"]);
    assert_eq!(get.stdout.trim(), "1", "the member serves after SIGHUP: {get:?}");
}

#[test]
fn admin_api_over_https_needs_the_token_and_reports_certificate_expiry() {
    let m = Single::start(false);
    let admin = addr("127.0.0.1", m.admin_port);
    let cfg = || client_config(&m.pki.ca.crt, None, &[b"http/1.1"]);
    let (code, body) = https(admin, cfg(), "GET", "/status", None).unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"error\""), "a JSON error body: {body}");
    let (code, _) = https(admin, cfg(), "GET", "/status", Some("wrong")).unwrap();
    assert_eq!(code, 401);
    let (code, body) = https(admin, cfg(), "GET", "/status", Some(ADMIN_TOKEN)).unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    let certs = status["certificates"].as_array().expect("certificates in /status");
    let server = certs
        .iter()
        .find(|c| c["file"].as_str() == Some(&m.server.crt.display().to_string()))
        .unwrap_or_else(|| panic!("the server certificate in {certs:?}"));
    assert_eq!(server["role"], "client");
    assert!(server["days_left"].as_i64().unwrap() > 30, "{server}");
    assert_eq!(status["insecure_allow_remote"], false);
    // /health and /metrics stay open (admin_open_health_metrics defaults to on).
    let (code, metrics) = https(admin, cfg(), "GET", "/metrics", None).unwrap();
    assert_eq!(code, 200, "{metrics}");
    let line = format!("meridian_cert_expiry_seconds{{file=\"{}\",role=\"client\"}}", m.server.crt.display());
    assert!(metrics.contains(&line), "{metrics}");
    assert_eq!(https(admin, cfg(), "GET", "/health", None).unwrap().0, 200);
    // The admin port speaks TLS only.
    assert!(common::http::http(admin, "GET", "/health", "").is_err_or_not_200());
}

trait NotServed {
    fn is_err_or_not_200(&self) -> bool;
}

impl NotServed for Result<(u16, String), String> {
    fn is_err_or_not_200(&self) -> bool {
        !matches!(self, Ok((200, _)))
    }
}

#[test]
fn the_etcd_client_crate_connects_with_tls_and_a_client_certificate() {
    let m = Single::start(true);
    let pem = |p: &Path| std::fs::read(p).unwrap();
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(pem(&m.pki.ca.crt)))
        .identity(etcd_client::Identity::from_pem(pem(&m.root.crt), pem(&m.root.key)));
    let endpoint = m.endpoint();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let opts = etcd_client::ConnectOptions::new().with_tls(tls).with_connect_timeout(Duration::from_secs(5));
        let mut client = etcd_client::Client::connect([endpoint], Some(opts)).await.expect("connect with TLS");
        client.put("crate-key", "crate-value", None).await.expect("put");
        let got = client.get("crate-key", None).await.expect("get");
        assert_eq!(got.kvs()[0].value(), b"crate-value");
    });
}

#[test]
fn the_etcd_client_crate_with_tls_and_a_user_and_a_certificate_naming_its_user() {
    let m = Single::start(true);
    let alice_cert = m.pki.client("alice");
    let pem = |p: &Path| std::fs::read(p).unwrap();
    let tls_as = |pair: &Pair| {
        etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(pem(&m.pki.ca.crt)))
            .identity(etcd_client::Identity::from_pem(pem(&pair.crt), pem(&pair.key)))
    };
    let endpoint = m.endpoint();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let connect = |tls: etcd_client::TlsOptions, user: Option<(&str, &str)>| {
            let mut opts =
                etcd_client::ConnectOptions::new().with_tls(tls).with_connect_timeout(Duration::from_secs(5));
            if let Some((u, p)) = user {
                opts = opts.with_user(u, p);
            }
            etcd_client::Client::connect([endpoint.clone()], Some(opts))
        };
        let mut root = connect(tls_as(&m.root), None).await.expect("connect as root's certificate");
        root.user_add("root", "rootpw", None).await.expect("user add root");
        root.user_add("alice", "alicepw", None).await.expect("user add alice");
        root.role_add("app").await.expect("role add");
        let perm = etcd_client::Permission::read_write("a/").with_prefix();
        root.role_grant_permission("app", perm).await.expect("grant");
        root.user_grant_role("alice", "app").await.expect("grant role");
        root.role_add("root").await.expect("root role");
        root.user_grant_role("root", "root").await.expect("root gets root");
        root.auth_enable().await.expect("auth enable");
        // A user and password over TLS.
        let mut alice = connect(tls_as(&alice_cert), Some(("alice", "alicepw"))).await.expect("connect as alice");
        alice.put("a/1", "v", None).await.expect("alice writes her prefix");
        let denied = alice.put("secret", "v", None).await.expect_err("outside her prefix");
        assert!(denied.to_string().contains("permission denied"), "{denied}");
        // With --client-cert-auth and no password, the certificate's common name is the user.
        let mut by_cert = connect(tls_as(&alice_cert), None).await.expect("connect with alice's certificate");
        by_cert.put("a/2", "v", None).await.expect("the CN alice writes her prefix");
        let denied = by_cert.get("secret", None).await.expect_err("the CN alice reads only her prefix");
        assert!(denied.to_string().contains("permission denied"), "{denied}");
        let mut root = connect(tls_as(&m.root), None).await.expect("root by certificate");
        root.put("secret", "root's", None).await.expect("the CN root may write anywhere");
    });
    assert_no_key_material(&m.proc.log_text(), &[m.root.key.as_path(), alice_cert.key.as_path()]);
}

#[test]
fn meridian_bench_loads_a_tls_endpoint_with_a_client_certificate() {
    let m = Single::start(true);
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"));
        cmd.args(["bench", "put", "--total", "200", "--clients", "4", "--json", "--endpoints", &m.endpoint()]);
        cmd.args(extra).env("MERIDIAN_LOG", "warn").output().expect("run meridian bench")
    };
    let (ca, crt, key) =
        (m.pki.ca.crt.display().to_string(), m.root.crt.display().to_string(), m.root.key.display().to_string());
    let out = run(&["--cacert", &ca, "--cert", &crt, "--key", &key]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["ops"].as_u64(), report["errors"].as_u64()), (Some(200), Some(0)), "{report}");
    // Without the client certificate the member refuses the connection (with TLS 1.3 after the client's side of
    // the handshake, so bench either fails to connect or counts every operation as an error).
    let refused = run(&["--cacert", &ca]);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    if refused.status.success() {
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!((report["ops"].as_u64(), report["errors"].as_u64()), (Some(0), Some(200)), "{report}");
    }
}

#[test]
fn certificate_rotation_serves_new_connections_while_a_watch_goes_on() {
    let m = Single::start(false);
    let (ep, flags) = (m.endpoint(), m.flags());
    let client_addr = addr("127.0.0.1", m.client_port);
    let presented = || {
        handshake(client_addr, "127.0.0.1", client_config(&m.pki.ca.crt, None, &[b"h2"])).map(|chain| chain[0].clone())
    };
    let der_of = |p: &Path| common::tls::first_der(p);
    assert_eq!(presented().unwrap(), der_of(&m.server.crt));

    let mut watch_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    watch_args.extend(["watch", "rotating"]);
    let mut watch = WatchProc::spawn(&ep, &watch_args);
    let mut first = Vec::new();
    assert!(
        poll_until(DEADLINE, EVERY, || {
            ctl(&ep, &flags, &["put", "rotating", "before"]).ok();
            first.extend(watch.wait_lines(3, Duration::from_millis(300)));
            first.iter().any(|l| l == "before")
        }),
        "the watch never saw the first put: {first:?}"
    );

    // New certificate and key, each written to a temporary file and renamed over the old one.
    let staging = m.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let fresh = m.pki.ca.issue(&staging, "server", "default", &["127.0.0.1", "localhost"], Usage::Server);
    std::fs::rename(&fresh.key, &m.server.key).unwrap();
    std::fs::rename(&fresh.crt, &m.server.crt).unwrap();
    let new_der = der_of(&m.server.crt);
    assert!(
        poll_until(DEADLINE, EVERY, || presented().is_ok_and(|der| der == new_der)),
        "new connections never got the new certificate:\n{}",
        m.proc.log_text()
    );
    assert!(ctl(&ep, &flags, &["put", "rotating", "after"]).ok());
    // etcdctl prints an event as three lines: PUT, the key, the value.
    let more = watch.wait_lines(3, Duration::from_secs(10));
    assert!(more.iter().any(|l| l == "after"), "the established watch stopped after rotation: {more:?}");

    // A bad new file keeps the configuration in use and is logged.
    std::fs::write(&m.server.crt, "not a certificate").unwrap();
    assert!(
        poll_until(DEADLINE, EVERY, || m.proc.log_text().contains("TLS files not reloaded")),
        "the bad file was not reported"
    );
    assert_eq!(presented().unwrap(), new_der, "a bad file replaced the working certificate");
    assert!(ctl(&ep, &flags, &["get", "rotating"]).ok());
    assert_no_key_material(&m.proc.log_text(), &[&m.server.key]);
}

/// A member of the three-member peer-TLS cluster.
struct Member {
    name: &'static str,
    host: &'static str,
    client_port: u16,
    peer_port: u16,
    proc: Option<Proc>,
}

impl Member {
    fn endpoint(&self) -> String {
        format!("https://{}:{}", self.host, self.client_port)
    }

    fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
    }
}

/// Three members on 127.0.0.1/.2/.3 with TLS on the client and peer links. `peer_cert_of(i)` picks the peer
/// certificate member i starts with (normally its own).
struct TlsCluster {
    dir: tempfile::TempDir,
    pki: Pki,
    members: Vec<Member>,
    root: Pair,
}

impl TlsCluster {
    fn start(peer_cert_of: impl Fn(usize) -> usize) -> TlsCluster {
        let dir = tempfile::Builder::new().prefix("meridian-tls-cluster-").tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"));
        let root = pki.client("root");
        let mut members: Vec<Member> = [("a", "127.0.0.1"), ("b", "127.0.0.2"), ("c", "127.0.0.3")]
            .into_iter()
            .map(|(name, host)| Member { name, host, client_port: free_port(), peer_port: free_port(), proc: None })
            .collect();
        // a founds the cluster (the preferred DC's voter), so a and b are a quorum even if c is refused.
        let mut topology = String::from("[policy]\nleader_preference = [\"dc-a\"]\n[timing]\npreset = \"lan\"\n");
        for m in &members {
            topology.push_str(&format!(
                "\n[[members]]\nname = \"{}\"\ndc = \"dc-{}\"\nzone = \"z1\"\nrole = \"voter\"\n\
                 peer_url = \"https://{}:{}\"\nclient_url = \"{}\"\n",
                m.name,
                m.name,
                m.host,
                m.peer_port,
                m.endpoint()
            ));
        }
        let topology_path = dir.path().join("topology.toml");
        std::fs::write(&topology_path, topology).unwrap();
        let certs: Vec<_> = members.iter().map(|m| pki.member(m.name, m.host)).collect();
        for (i, m) in members.iter_mut().enumerate() {
            let own = &certs[i];
            let peer = &certs[peer_cert_of(i)].peer;
            let chosen = common::tls::MemberCerts { server: own.server.clone(), peer: peer.clone() };
            let mut a = args(&["--name", m.name, "--topology"]);
            a.push(topology_path.display().to_string());
            a.push("--data-dir".into());
            a.push(dir.path().join(format!("{}-data", m.name)).display().to_string());
            a.extend(tls_flags(&pki, &chosen));
            m.proc = Some(Proc::spawn(&a, &dir.path().join(format!("{}.log", m.name))));
        }
        TlsCluster { dir, pki, members, root }
    }

    fn flags(&self) -> Vec<String> {
        etcdctl_tls(&self.pki.ca.crt, Some(&self.root))
    }

    /// Waits until a put through member `via` is read back (serializable, locally) on every member in `on`.
    fn put_and_see(&self, via: usize, on: &[usize], key: &str, value: &str) -> bool {
        let flags = self.flags();
        poll_until(DEADLINE, EVERY, || ctl(&self.members[via].endpoint(), &flags, &["put", key, value]).ok())
            && poll_until(DEADLINE, EVERY, || {
                on.iter().all(|&i| {
                    let out = ctl(
                        &self.members[i].endpoint(),
                        &flags,
                        &["get", key, "--print-value-only", "--consistency=s"],
                    );
                    out.stdout.trim() == value
                })
            })
    }

    fn logs(&self) -> String {
        self.members.iter().map(|m| format!("--- {} ---\n{}", m.name, m.log())).collect()
    }

    /// A raw mutual-TLS handshake with member `i`'s peer port, trusting `ca` and presenting `cert`.
    fn peer_handshake(&self, i: usize, ca: &Path, cert: &Pair) -> Result<Vec<Vec<u8>>, String> {
        let m = &self.members[i];
        handshake(addr(m.host, m.peer_port), m.host, client_config(ca, Some(cert), &[b"h2"]))
    }
}

#[test]
fn three_members_with_peer_tls_replicate_and_refuse_foreign_certificates() {
    let cluster = TlsCluster::start(|i| i);
    assert!(cluster.put_and_see(0, &[0, 1, 2], "replicated", "over-tls"), "no replication:\n{}", cluster.logs());
    let peer_ca = cluster.pki.peer_ca.crt.clone();
    let dir = cluster.dir.path().to_owned();
    let b_peer = Pair { crt: dir.join("pki/b/peer.crt"), key: dir.join("pki/b/peer.key") };
    let c_peer = Pair { crt: dir.join("pki/c/peer.crt"), key: dir.join("pki/c/peer.key") };

    // A member's own peer certificate is accepted by another member.
    cluster.peer_handshake(0, &peer_ca, &b_peer).expect("b's peer certificate accepted by a");
    // A client certificate (client CA) never reaches the peer service.
    let client = cluster.peer_handshake(0, &peer_ca, &cluster.root);
    assert!(client.is_err(), "a client certificate was accepted on the peer port");
    // A peer certificate for b's host from another CA.
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other_ca = Ca::new(&other_dir, "other-peer-ca");
    let foreign = other_ca.issue(&other_dir, "b-peer", "b", &["127.0.0.2"], Usage::Peer);
    assert!(cluster.peer_handshake(0, &peer_ca, &foreign).is_err(), "a certificate of another CA was accepted");
    // An expired certificate from the right CA for b's host.
    let expired = cluster.pki.peer_ca.issue_expired(&other_dir, "b-expired", "b", &["127.0.0.2"], Usage::Peer);
    assert!(cluster.peer_handshake(0, &peer_ca, &expired).is_err(), "an expired certificate was accepted");
    // A valid peer certificate for a host that is no member.
    let stranger = cluster.pki.peer_ca.issue(&other_dir, "d-peer", "d", &["127.0.0.4"], Usage::Peer);
    assert!(cluster.peer_handshake(0, &peer_ca, &stranger).is_err(), "a non-member's certificate was accepted");
    let a_log = cluster.members[0].log();
    let refusals: Vec<&str> = a_log.lines().filter(|l| l.contains("refused a client certificate")).collect();
    assert!(refusals.iter().any(|l| l.contains("subject=CN=root") && l.contains("UnknownIssuer")), "{a_log}");
    assert!(refusals.iter().any(|l| l.contains("subject=CN=b") && l.contains("UnknownIssuer")), "{a_log}");
    assert!(a_log.to_lowercase().contains("expired"), "the expiry is the logged reason:\n{a_log}");
    assert!(a_log.contains("refused a peer certificate") && a_log.contains("127.0.0.4"), "{a_log}");

    // Once c is removed from the membership, its certificate is refused on new connections.
    cluster.peer_handshake(0, &peer_ca, &c_peer).expect("c's peer certificate accepted while c is a member");
    let flags = cluster.flags();
    let list = ctl(&cluster.members[0].endpoint(), &flags, &["member", "list"]);
    let c_id = list
        .stdout
        .lines()
        .find(|l| l.split(", ").nth(2) == Some("c"))
        .and_then(|l| l.split(", ").next())
        .unwrap_or_else(|| panic!("c in the member list: {list:?}"))
        .to_owned();
    let removed = ctl(&cluster.members[0].endpoint(), &flags, &["member", "remove", &c_id]);
    assert!(removed.ok(), "{removed:?}");
    assert!(
        poll_until(DEADLINE, EVERY, || cluster.peer_handshake(0, &peer_ca, &c_peer).is_err()),
        "a removed member's certificate is still accepted"
    );
    cluster.peer_handshake(0, &peer_ca, &b_peer).expect("b still accepted");
    for m in &cluster.members {
        assert_no_key_material(&m.log(), &[&b_peer.key, &c_peer.key]);
        assert!(!m.log().contains("panicked"), "{}", m.log());
    }
}

#[test]
fn a_member_presenting_another_members_peer_certificate_is_refused() {
    // c starts with a's (valid) peer certificate: whoever dials c's URL gets a certificate for a's host.
    let cluster = TlsCluster::start(|i| if i == 2 { 0 } else { i });
    assert!(cluster.put_and_see(0, &[0, 1], "quorum", "of-two"), "a and b did not form a quorum:\n{}", cluster.logs());
    let c_host = format!("{}:{}", cluster.members[2].host, cluster.members[2].peer_port);
    assert!(
        poll_until(DEADLINE, EVERY, || {
            cluster.members[..2]
                .iter()
                .any(|m| m.log().lines().any(|l| l.contains("TLS handshake with a peer failed") && l.contains(&c_host)))
        }),
        "no member logged refusing c's certificate:\n{}",
        cluster.logs()
    );
    let refusal = cluster.members[..2]
        .iter()
        .flat_map(|m| m.log().lines().map(str::to_owned).collect::<Vec<_>>())
        .find(|l| l.contains("TLS handshake with a peer failed") && l.contains(&c_host))
        .unwrap();
    assert!(refusal.contains("not valid for name"), "the reason is the name check: {refusal}");
    let flags = cluster.flags();
    let on_c = ctl(&cluster.members[2].endpoint(), &flags, &["get", "quorum", "--print-value-only", "--consistency=s"]);
    assert_ne!(on_c.stdout.trim(), "of-two", "the impostor received the data");
}

#[test]
fn a_member_cannot_speak_as_itself_under_another_members_certificate() {
    // a, the founder, presents b's (valid) peer certificate when it dials: the handshake passes (the certificate
    // names a member's host), but once b and c know the membership, a's messages name a as their sender and the
    // certificate does not name a's host: they are refused, so a cannot lead them.
    let cluster = TlsCluster::start(|i| if i == 0 { 1 } else { i });
    assert!(
        poll_until(DEADLINE, EVERY, || cluster.members[1..].iter().any(|m| m.log().contains("refused a peer message"))),
        "neither b nor c refused a's messages sent under b's certificate:\n{}",
        cluster.logs()
    );
    let flags = cluster.flags();
    let on_b = ctl(&cluster.members[1].endpoint(), &flags, &["put", "without-a", "1"]);
    if on_b.ok() {
        // b and c may form a quorum of their own; a never receives what they write.
        let on_a =
            ctl(&cluster.members[0].endpoint(), &flags, &["get", "without-a", "--print-value-only", "--consistency=s"]);
        assert_ne!(on_a.stdout.trim(), "1", "the impostor received the data");
    }
}

#[test]
fn a_plain_listener_beyond_loopback_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let a = vec![
        "--data-dir".to_owned(),
        dir.path().join("data").display().to_string(),
        "--listen-client".into(),
        format!("http://0.0.0.0:{port}"),
    ];
    let mut proc = Proc::spawn(&a, &dir.path().join("server.log"));
    let code = proc.wait_exit(DEADLINE).expect("the server did not exit");
    assert_ne!(code, 0);
    let log = proc.log_text();
    assert!(log.contains("is not a loopback address and does not use TLS"), "{log}");
    assert!(log.contains("--insecure-allow-remote"), "{log}");
    assert_eq!(log.trim().lines().count(), 1, "one clear line: {log}");
    assert!(!dir.path().join("data").exists(), "nothing was created before the refusal");
}

#[test]
fn a_cluster_runs_on_the_files_meridian_certs_writes() {
    let dir = tempfile::Builder::new().prefix("meridian-tls-certs-").tempdir().unwrap();
    let hosts = [("a", "127.0.0.1"), ("b", "127.0.0.2"), ("c", "127.0.0.3")];
    let ports: Vec<(u16, u16)> = hosts.iter().map(|_| (free_port(), free_port())).collect();
    let mut topology = String::from("[policy]\nleader_preference = [\"dc-a\"]\n[timing]\npreset = \"lan\"\n");
    for ((name, host), (client, peer)) in hosts.iter().zip(&ports) {
        topology.push_str(&format!(
            "\n[[members]]\nname = \"{name}\"\ndc = \"dc-{name}\"\nzone = \"z1\"\nrole = \"voter\"\n\
             peer_url = \"https://{host}:{peer}\"\nclient_url = \"https://{host}:{client}\"\n"
        ));
    }
    let topology_path = dir.path().join("topology.toml");
    std::fs::write(&topology_path, topology).unwrap();
    let out = dir.path().join("certs");
    let certs = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["certs", "--topology", &topology_path.display().to_string(), "--out-dir", &out.display().to_string()])
        .output()
        .expect("run meridian certs");
    assert!(certs.status.success(), "{}", String::from_utf8_lossy(&certs.stderr));
    let file = |rel: &str| out.join(rel).display().to_string();
    let procs: Vec<Proc> = hosts
        .iter()
        .map(|(name, _)| {
            let mut a = args(&["--name", name, "--topology"]);
            a.push(topology_path.display().to_string());
            a.push("--data-dir".into());
            a.push(dir.path().join(format!("{name}-data")).display().to_string());
            for (flag, rel) in [
                ("--cert-file", format!("{name}/server.crt")),
                ("--key-file", format!("{name}/server.key")),
                ("--trusted-ca-file", "ca.crt".to_owned()),
                ("--peer-cert-file", format!("{name}/peer.crt")),
                ("--peer-key-file", format!("{name}/peer.key")),
                ("--peer-trusted-ca-file", "peer-ca.crt".to_owned()),
            ] {
                a.extend([flag.to_owned(), file(&rel)]);
            }
            a.push("--client-cert-auth".into());
            Proc::spawn(&a, &dir.path().join(format!("{name}.log")))
        })
        .collect();
    let root = Pair { crt: out.join("clients/root.crt"), key: out.join("clients/root.key") };
    let flags = etcdctl_tls(&out.join("ca.crt"), Some(&root));
    let endpoint = |i: usize| format!("https://{}:{}", hosts[i].1, ports[i].0);
    let logs = || procs.iter().map(Proc::log_text).collect::<Vec<_>>().join("\n---\n");
    assert!(
        poll_until(DEADLINE, EVERY, || ctl(&endpoint(0), &flags, &["put", "from-certs", "yes"]).ok()),
        "no put on a cluster made of meridian certs' files:\n{}",
        logs()
    );
    assert!(
        poll_until(DEADLINE, EVERY, || (0..3).all(|i| {
            ctl(&endpoint(i), &flags, &["get", "from-certs", "--print-value-only", "--consistency=s"]).stdout.trim()
                == "yes"
        })),
        "not replicated to every member:\n{}",
        logs()
    );
}

/// etcd's JSON gateway shares the TLS client port with gRPC: HTTP/1.1 (what Patroni speaks) and HTTP/2, chosen by
/// ALPN, each authenticated by the client certificate as gRPC is.
#[test]
fn the_json_gateway_shares_the_tls_client_port() {
    let m = Single::start(true);
    let url = format!("{}/v3/kv/range", m.endpoint());
    let ca = m.pki.ca.crt.display().to_string();
    let (crt, key) = (m.root.crt.display().to_string(), m.root.key.display().to_string());
    let curl = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "-w", "\n%{http_version}", "--cacert", &ca, "-X", "POST"])
            .args(extra)
            .args(["--data-binary", r#"{"key":"cmVhZHk="}"#, &url])
            .output()
            .expect("curl")
    };
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = curl(&[flag, "--cert", &crt, "--key", &key]);
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, used) = text.rsplit_once('\n').unwrap_or_default();
        assert_eq!(used, version, "{flag}: {text} {}", String::from_utf8_lossy(&out.stderr));
        // The key the readiness put wrote ("ready" = "1").
        assert!(body.contains(r#""key":"cmVhZHk=""#) && body.contains(r#""value":"MQ==""#), "{flag}: {body}");
    }
    // With client certificates required, a client without one is refused at the handshake.
    let out = curl(&["--http1.1"]);
    assert!(!out.status.success(), "served without a client certificate: {}", String::from_utf8_lossy(&out.stdout));
    // gRPC still works on the same port.
    assert!(ctl(&m.endpoint(), &m.flags(), &["get", "ready"]).stdout.contains('1'));
}
