//! The same etcdctl script over TLS, with `--cacert --cert --key`, against etcd 3.4 and Meridian, both with a
//! server certificate and `--client-cert-auth`: puts and gets, users and roles, `--user`, a wrong password, a
//! permission refused, a client certificate's common name as the user. The normalised transcripts must match.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::tls::{Pair, Pki, Proc, etcdctl_tls};
use common::transcript::Normaliser;
use common::{ETCD_BIN, MEMBER_NAME, Output, etcdctl, free_port, poll_until};

/// An etcd 3.4 process, killed (by PID) when dropped.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// One server under the script: its endpoint, ports and the process kept alive.
struct Subject<T> {
    endpoint: String,
    client_port: u16,
    peer_port: u16,
    _process: T,
}

fn tls_flags(server: &Pair, pki: &Pki) -> Vec<String> {
    vec![
        format!("--cert-file={}", server.crt.display()),
        format!("--key-file={}", server.key.display()),
        format!("--trusted-ca-file={}", pki.ca.crt.display()),
        "--client-cert-auth".to_owned(),
    ]
}

fn start_etcd(dir: &Path, server: &Pair, pki: &Pki) -> Subject<Etcd> {
    let (client_port, peer_port) = (free_port(), free_port());
    let client = format!("https://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.join("etcd.log")).expect("etcd log");
    let child = Command::new(ETCD_BIN)
        .args(["--name", MEMBER_NAME, "--data-dir"])
        .arg(dir.join("etcd-data"))
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .arg(format!("--initial-cluster={MEMBER_NAME}={peer}"))
        .args(tls_flags(server, pki))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn etcd");
    Subject { endpoint: client, client_port, peer_port, _process: Etcd(child) }
}

fn start_meridian(dir: &Path, server: &Pair, pki: &Pki) -> Subject<Proc> {
    let (client_port, peer_port) = (free_port(), free_port());
    let client = format!("https://127.0.0.1:{client_port}");
    let mut args: Vec<String> = vec!["--name".into(), MEMBER_NAME.into(), "--data-dir".into()];
    args.push(dir.join("meridian-data").display().to_string());
    args.extend(["--listen-client".into(), client.clone(), "--listen-peer".into()]);
    args.push(format!("http://127.0.0.1:{peer_port}"));
    args.extend(tls_flags(server, pki));
    let proc = Proc::spawn(&args, &dir.join("meridian.log"));
    Subject { endpoint: client, client_port, peer_port, _process: proc }
}

/// Runs the script against `endpoint` (waiting first until it takes a put) and returns the normalised transcript.
fn transcript(endpoint: &str, client_port: u16, peer_port: u16, pki: &Pki, root: &Pair, alice: &Pair) -> String {
    let as_root = etcdctl_tls(&pki.ca.crt, Some(root));
    let as_alice = etcdctl_tls(&pki.ca.crt, Some(alice));
    let run = |flags: &[String], args: &[&str]| -> Output {
        let mut full: Vec<&str> = flags.iter().map(String::as_str).collect();
        full.extend(args);
        etcdctl(endpoint, &full, None)
    };
    let ready =
        poll_until(Duration::from_secs(20), Duration::from_millis(100), || run(&as_root, &["put", "ready", "1"]).ok());
    assert!(ready, "{endpoint} never took a put over TLS");
    let mut norm = Normaliser::detached(client_port, peer_port);
    let mut out = String::new();
    let script: &[(bool, &[&str])] = &[
        (true, &["put", "greeting", "hello"]),
        (true, &["get", "greeting"]),
        (true, &["user", "add", "root:rootpw"]),
        (true, &["user", "add", "alice:alicepw"]),
        (true, &["role", "add", "app"]),
        (true, &["role", "grant-permission", "app", "readwrite", "a/", "--prefix"]),
        (true, &["user", "grant-role", "alice", "app"]),
        (true, &["auth", "enable"]),
        (false, &["--user=alice:alicepw", "put", "a/1", "one"]),
        (false, &["--user=alice:alicepw", "get", "a/", "--prefix"]),
        (false, &["--user=alice:alicepw", "put", "greeting", "mine"]),
        (false, &["--user=alice:wrong", "get", "a/1"]),
        // No --user: the certificate's common name is the user.
        (false, &["put", "a/2", "two"]),
        (false, &["get", "greeting"]),
        (true, &["get", "", "--prefix"]),
        (true, &["user", "list"]),
        (true, &["--user=root:rootpw", "auth", "disable"]),
        (true, &["get", "greeting"]),
    ];
    for (root_cert, args) in script {
        let (flags, who) = if *root_cert { (&as_root, "root's") } else { (&as_alice, "alice's") };
        let o = run(flags, args);
        let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        out.push_str(&format!("$ etcdctl --cacert --cert/--key ({who} certificate) {}\n", args.join(" ")));
        out.push_str(&norm.normalise(&owned, &o.stdout));
        if !o.stderr.is_empty() {
            out.push_str("[stderr]\n");
            out.push_str(&norm.normalise(&owned, &o.stderr));
        }
        out.push_str(&format!("[exit {}]\n", o.code));
    }
    out
}

#[test]
fn users_and_permissions_over_tls_answer_as_etcd_does() {
    let dir = tempfile::Builder::new().prefix("auth-tls-compat-").tempdir().expect("tempdir");
    let pki = Pki::new(&dir.path().join("pki"));
    let server = pki.member(MEMBER_NAME, "127.0.0.1").server;
    let (root, alice) = (pki.client("root"), pki.client("alice"));
    let etcd = start_etcd(dir.path(), &server, &pki);
    let meridian = start_meridian(dir.path(), &server, &pki);
    let reference = transcript(&etcd.endpoint, etcd.client_port, etcd.peer_port, &pki, &root, &alice);
    let subject = transcript(&meridian.endpoint, meridian.client_port, meridian.peer_port, &pki, &root, &alice);
    for (what, text) in [("permission denied", "etcdserver: permission denied"), ("CN user", "two")] {
        assert!(reference.contains(text), "etcd's transcript lacks {what}:\n{reference}");
    }
    assert_eq!(subject, reference, "the transcripts differ (left: Meridian, right: etcd 3.4)");
}
