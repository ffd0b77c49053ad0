//! `meridian certs` as a real process: the files and their modes, a refused rerun, a forced rerun that keeps the
//! CA, a member added later signed by the same CA, clear errors, and a `--help` that explains every file; and
//! the files as Go's TLS stack sees them, with a real etcd 3.4 and etcdctl.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::{free_port, poll_until};

use x509_parser::prelude::{FromDer, X509Certificate};

const TWO_MEMBERS: &str = r#"
[[members]]
name = "m1"
dc = "dc-a"
zone = "a-1"
peer_url = "https://127.0.0.2:2380"
client_url = "https://127.0.0.2:2379"
admin_url = "https://127.0.0.2:2381"

[[members]]
name = "m2"
dc = "dc-b"
zone = "b-1"
peer_url = "https://127.0.0.3:2380"
client_url = "https://127.0.0.3:2379"
"#;

const THIRD_MEMBER: &str = r#"
[[members]]
name = "m3"
dc = "dc-c"
zone = "c-1"
peer_url = "https://127.0.0.4:2380"
client_url = "https://127.0.0.4:2379"
"#;

fn certs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian")).arg("certs").args(args).output().expect("run meridian certs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// (issuer common name, subject common name) of a PEM certificate file.
fn names(path: &Path) -> (String, String) {
    let pem = fs::read(path).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&block.contents).unwrap();
    let cn =
        |name: &x509_parser::x509::X509Name<'_>| name.iter_common_name().next().unwrap().as_str().unwrap().to_owned();
    (cn(cert.issuer()), cn(cert.subject()))
}

#[test]
fn certs_writes_every_file_with_private_modes_and_reuses_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = tmp.path().join("topology.toml");
    fs::write(&topo, TWO_MEMBERS).unwrap();
    let out = tmp.path().join("pki");
    let (topo_s, out_s) = (topo.to_str().unwrap(), out.to_str().unwrap());

    let run = certs(&["--topology", topo_s, "--out-dir", out_s, "--client", "root", "--client", "reader"]);
    assert!(run.status.success(), "{}", text(&run));
    let summary = String::from_utf8_lossy(&run.stdout).into_owned();
    let ca = out.join("ca.crt");
    for flag in [
        format!("--cacert {}", ca.display()),
        format!("--cert {}", out.join("clients/root.crt").display()),
        format!("--key {}", out.join("clients/root.key").display()),
        format!("--cert-file {}", out.join("m1/server.crt").display()),
        format!("--peer-trusted-ca-file {}", out.join("peer-ca.crt").display()),
        "--endpoints https://127.0.0.2:2379,https://127.0.0.3:2379".to_owned(),
    ] {
        assert!(summary.contains(&flag), "summary lacks {flag:?}:\n{summary}");
    }
    assert!(!summary.contains("PRIVATE KEY"), "no key material printed");

    let keys = ["ca.key", "peer-ca.key", "m1/server.key", "m1/peer.key", "m2/server.key", "m2/peer.key"]
        .into_iter()
        .chain(["clients/root.key", "clients/reader.key"]);
    for key in keys {
        assert_eq!(mode(&out.join(key)), 0o600, "{key}");
        let pem = fs::read_to_string(out.join(key)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let cert = out.join(key.replace(".key", ".crt"));
        assert_eq!(mode(&cert), 0o644, "{}", cert.display());
    }
    for dir in ["", "m1", "m2", "clients"] {
        assert_eq!(mode(&out.join(dir)), 0o700, "dir {dir:?}");
    }
    assert_eq!(names(&out.join("m1/server.crt")), ("Meridian client CA".into(), "m1".into()));
    assert_eq!(names(&out.join("m2/peer.crt")), ("Meridian peer CA".into(), "m2".into()));
    assert_eq!(names(&out.join("clients/reader.crt")), ("Meridian client CA".into(), "reader".into()));

    // A rerun without --force refuses, names the file, and changes nothing.
    let server_crt = fs::read(out.join("m1/server.crt")).unwrap();
    let again = certs(&["--topology", topo_s, "--out-dir", out_s]);
    assert!(!again.status.success());
    let err = text(&again);
    assert!(err.contains("m1/server.crt already exists; pass --force"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(fs::read(out.join("m1/server.crt")).unwrap(), server_crt);

    // A forced rerun reissues the leaves and keeps both CAs byte for byte.
    let (ca_before, peer_ca_before) = (fs::read(&ca).unwrap(), fs::read(out.join("peer-ca.crt")).unwrap());
    let forced = certs(&["--topology", topo_s, "--out-dir", out_s, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(String::from_utf8_lossy(&forced.stdout).contains(&format!("kept     {}", ca.display())));
    assert_eq!(fs::read(&ca).unwrap(), ca_before, "ca.crt unchanged");
    assert_eq!(fs::read(out.join("peer-ca.crt")).unwrap(), peer_ca_before, "peer-ca.crt unchanged");
    assert_ne!(fs::read(out.join("m1/server.crt")).unwrap(), server_crt, "the leaf was reissued");
    assert_eq!(mode(&out.join("m1/server.key")), 0o600);

    // A member added later, in a run of its own (the existing members' files would be refused without --force):
    // its certificates are signed by the same CAs, so everything made before trusts it.
    let third = tmp.path().join("third.toml");
    fs::write(&third, THIRD_MEMBER).unwrap();
    let added = certs(&["--topology", third.to_str().unwrap(), "--out-dir", out_s, "--client", "m3-ops"]);
    assert!(added.status.success(), "{}", text(&added));
    assert_eq!(fs::read(&ca).unwrap(), ca_before);
    assert_eq!(names(&out.join("m3/peer.crt")), ("Meridian peer CA".into(), "m3".into()));
    assert_eq!(mode(&out.join("m3")), 0o700);
}

#[test]
fn certs_refuses_bad_input_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let out_s = out.to_str().unwrap();

    let missing = certs(&["--topology", "/nonexistent/topology.toml", "--out-dir", out_s]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("reading topology /nonexistent/topology.toml"), "{}", text(&missing));

    let topo = tmp.path().join("topology.toml");
    fs::write(&topo, TWO_MEMBERS.replace("https://127.0.0.3:2380", "https://:2380")).unwrap();
    let bad_url = certs(&["--topology", topo.to_str().unwrap(), "--out-dir", out_s]);
    assert!(!bad_url.status.success());
    assert!(text(&bad_url).contains("member m2: peer_url"), "{}", text(&bad_url));

    fs::write(&topo, TWO_MEMBERS).unwrap();
    let bad_client = certs(&["--topology", topo.to_str().unwrap(), "--out-dir", out_s, "--client", "../x"]);
    assert!(!bad_client.status.success());
    assert!(text(&bad_client).contains("client name \"../x\""), "{}", text(&bad_client));
    assert!(!out.exists(), "nothing written by refused runs");

    for e in [&missing, &bad_url, &bad_client] {
        assert_eq!(e.status.code(), Some(1));
        assert!(!text(e).contains("panicked"));
    }
}

#[test]
fn certs_help_explains_every_file() {
    let help = certs(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for file in [
        "ca.crt",
        "ca.key",
        "peer-ca.crt",
        "peer-ca.key",
        "<member>/server.crt",
        "<member>/server.key",
        "<member>/peer.crt",
        "<member>/peer.key",
        "clients/<name>.crt",
        "clients/<name>.key",
    ] {
        assert!(help.contains(file), "--help does not mention {file}:\n{help}");
    }
    for flag in ["--topology", "--out-dir", "--client", "--days", "--force"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// Kills and reaps the etcd this test started (by its own handle), whatever the test's outcome.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn etcdctl(endpoint: &str, tls: &[&str], args: &[&str]) -> Output {
    Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--dial-timeout", "1s", "--command-timeout", "2s"])
        .args(tls)
        .args(args)
        .output()
        .expect("run etcdctl")
}

/// Another TLS stack than rustls judges the files: a real etcd 3.4 serves its client port with a member's
/// server certificate, requires client certificates from ca.crt, and runs its peer listener on the peer
/// certificate and the peer CA; etcdctl with clients/root reads and writes, and is refused without a client
/// certificate or with a peer certificate (signed by the peer CA).
#[test]
fn etcd_and_etcdctl_accept_the_generated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (client_port, peer_port) = (free_port(), free_port());
    let client_url = format!("https://127.0.0.1:{client_port}");
    let peer_url = format!("https://127.0.0.1:{peer_port}");
    let topo = tmp.path().join("topology.toml");
    let member = format!(
        "[[members]]\nname = \"e1\"\ndc = \"dc-a\"\nzone = \"a-1\"\npeer_url = \"{peer_url}\"\nclient_url = \"{client_url}\"\n"
    );
    fs::write(&topo, member).unwrap();
    let pki = tmp.path().join("pki");
    let run = certs(&["--topology", topo.to_str().unwrap(), "--out-dir", pki.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
    let file = |name: &str| pki.join(name).to_str().unwrap().to_owned();

    let log = fs::File::create(tmp.path().join("etcd.log")).unwrap();
    let child = Command::new("/usr/bin/etcd")
        .args(["--name", "e1", "--data-dir", tmp.path().join("data").to_str().unwrap()])
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("e1={peer_url}")])
        .args(["--cert-file", &file("e1/server.crt"), "--key-file", &file("e1/server.key")])
        .args(["--trusted-ca-file", &file("ca.crt"), "--client-cert-auth"])
        .args(["--peer-cert-file", &file("e1/peer.crt"), "--peer-key-file", &file("e1/peer.key")])
        .args(["--peer-trusted-ca-file", &file("peer-ca.crt"), "--peer-client-cert-auth"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start etcd");
    let _etcd = Etcd(child);

    let (ca, root_crt, root_key) = (file("ca.crt"), file("clients/root.crt"), file("clients/root.key"));
    let root = ["--cacert", &ca, "--cert", &root_crt, "--key", &root_key];
    let put_ok = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        etcdctl(&client_url, &root, &["put", "greeting", "hello"]).status.success()
    });
    let etcd_log = || fs::read_to_string(tmp.path().join("etcd.log")).unwrap_or_default();
    assert!(put_ok, "etcdctl with clients/root never got through; etcd log:\n{}", etcd_log());
    let get = etcdctl(&client_url, &root, &["get", "greeting", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello", "{}", text(&get));

    let no_cert = etcdctl(&client_url, &["--cacert", &ca], &["get", "greeting"]);
    assert!(!no_cert.status.success(), "a client without a certificate got through");
    let (peer_crt, peer_key) = (file("e1/peer.crt"), file("e1/peer.key"));
    let as_peer =
        etcdctl(&client_url, &["--cacert", &ca, "--cert", &peer_crt, "--key", &peer_key], &["get", "greeting"]);
    assert!(!as_peer.status.success(), "a peer certificate (peer CA) was accepted on the client port");
    let log = etcd_log();
    assert!(log.contains("client didn't provide a certificate"), "{log}");
}
