//! Test certificates made with rcgen (a client CA, a peer CA, member server/peer certificates, client
//! certificates, expired ones), blocking rustls clients for raw handshakes and HTTPS requests, and a
//! `meridian server` process started with any flags.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Bound on each raw TLS exchange of a test.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A certificate authority kept in memory to sign more certificates, and written as `<name>.crt`/`.key`.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate file.
    pub crt: PathBuf,
}

/// A certificate and key on disk.
#[derive(Clone, Debug)]
pub struct Pair {
    /// PEM certificate.
    pub crt: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A member's client-facing server certificate (serverAuth).
    Server,
    /// A member's peer certificate (serverAuth + clientAuth).
    Peer,
    /// A client certificate (clientAuth).
    Client,
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

impl Ca {
    /// A new self-signed CA written to `dir/<name>.crt|.key`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let crt = dir.join(format!("{name}.crt"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        Ca { cert, key, crt }
    }

    /// A leaf signed by this CA, with common name `cn` and SANs `sans`, written to `dir/<file>.crt|.key`.
    pub fn issue(&self, dir: &Path, file: &str, cn: &str, sans: &[&str], usage: Usage) -> Pair {
        self.issue_with(dir, file, cn, sans, usage, |_| {})
    }

    /// As [`Ca::issue`], already expired (valid in 2020 only).
    pub fn issue_expired(&self, dir: &Path, file: &str, cn: &str, sans: &[&str], usage: Usage) -> Pair {
        self.issue_with(dir, file, cn, sans, usage, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 12, 31);
        })
    }

    /// As [`Ca::issue`], not valid yet (from 2099 on).
    pub fn issue_not_yet_valid(&self, dir: &Path, file: &str, cn: &str, sans: &[&str], usage: Usage) -> Pair {
        self.issue_with(dir, file, cn, sans, usage, |p| {
            p.not_before = rcgen::date_time_ymd(2099, 1, 1);
            p.not_after = rcgen::date_time_ymd(2100, 1, 1);
        })
    }

    fn issue_with(
        &self,
        dir: &Path,
        file: &str,
        cn: &str,
        sans: &[&str],
        usage: Usage,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Pair {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Peer => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let pair = Pair { crt: dir.join(format!("{file}.crt")), key: dir.join(format!("{file}.key")) };
        std::fs::write(&pair.crt, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }
}

/// The files of a member with TLS on its client (server certificate) and peer links.
pub struct MemberCerts {
    /// Server certificate for the client and admin listeners.
    pub server: Pair,
    /// Peer certificate.
    pub peer: Pair,
}

/// A client CA and a peer CA in one directory, as `meridian certs` writes them.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
    /// Signs member server certificates and client certificates (`ca.crt`).
    pub ca: Ca,
    /// Signs peer certificates only (`peer-ca.crt`).
    pub peer_ca: Ca,
}

impl Pki {
    /// New CAs in `dir`.
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        Pki { dir: dir.to_owned(), ca: Ca::new(dir, "ca"), peer_ca: Ca::new(dir, "peer-ca") }
    }

    /// Server and peer certificates of member `name` on `host` (`127.0.0.x`).
    pub fn member(&self, name: &str, host: &str) -> MemberCerts {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        MemberCerts {
            server: self.ca.issue(&dir, "server", name, &[host, "localhost", "127.0.0.1"], Usage::Server),
            peer: self.peer_ca.issue(&dir, "peer", name, &[host], Usage::Peer),
        }
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str) -> Pair {
        let dir = self.dir.join("clients");
        std::fs::create_dir_all(&dir).unwrap();
        self.ca.issue(&dir, name, name, &[], Usage::Client)
    }
}

/// The `meridian server` flags of a member using `certs` for its client listener and `pki`'s peer CA.
pub fn tls_flags(pki: &Pki, certs: &MemberCerts) -> Vec<String> {
    [
        ("--cert-file", &certs.server.crt),
        ("--key-file", &certs.server.key),
        ("--trusted-ca-file", &pki.ca.crt),
        ("--peer-cert-file", &certs.peer.crt),
        ("--peer-key-file", &certs.peer.key),
        ("--peer-trusted-ca-file", &pki.peer_ca.crt),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
    .collect()
}

/// etcdctl's TLS flags for `ca` and, optionally, a client certificate.
pub fn etcdctl_tls(ca: &Path, client: Option<&Pair>) -> Vec<String> {
    let mut flags = vec![format!("--cacert={}", ca.display())];
    if let Some(c) = client {
        flags.push(format!("--cert={}", c.crt.display()));
        flags.push(format!("--key={}", c.key.display()));
    }
    flags
}

fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path).unwrap().map(Result::unwrap).collect()
}

/// A rustls client configuration trusting `ca`, presenting `client` if given, offering `alpn`.
pub fn client_config(ca: &Path, client: Option<&Pair>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca) {
        roots.add(c).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some(c) => {
            builder.with_client_auth_cert(read_certs(&c.crt), PrivateKeyDer::from_pem_file(&c.key).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(cfg)
}

/// A TLS connection to `addr` for `server_name`; after the handshake reads the server's first bytes (an HTTP/2
/// server sends its SETTINGS at once), so a client certificate the server refuses shows up as an error here.
/// Returns the server's certificate chain.
pub fn handshake(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("handshake: {e}"))?;
    }
    let chain: Vec<Vec<u8>> = conn.peer_certificates().unwrap_or_default().iter().map(|c| c.to_vec()).collect();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut first = [0u8; 9];
    tls.read_exact(&mut first).map_err(|e| format!("after the handshake: {e}"))?;
    Ok(chain)
}

/// One HTTPS/1.1 request on a fresh connection, with an optional bearer token; (status, body).
pub fn https(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut conn = rustls::ClientConnection::new(config, ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n");
    tls.write_all(req.as_bytes()).map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    // A peer that closes without close_notify still delivered the whole response (Connection: close).
    if let Err(e) = tls.read_to_end(&mut raw)
        && raw.is_empty()
    {
        return Err(format!("{method} {path}: {e}"));
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("{method} {path}: no header end"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status code")?;
    Ok((code, body.to_owned()))
}

/// A `meridian server` child process, killed (by PID) when dropped.
pub struct Proc {
    child: Option<Child>,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl Proc {
    /// Starts `meridian server <args>` logging to `log`.
    pub fn spawn(args: &[String], log: &Path) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
        cmd.arg("server").args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MERIDIAN_") {
                cmd.env_remove(&k);
            }
        }
        let out = OpenOptions::new().create(true).append(true).open(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        Proc { child: Some(cmd.spawn().expect("spawn meridian server")), log: log.to_owned() }
    }

    /// The log so far, without terminal colour codes.
    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits (bounded) for the process to exit; its exit code, or `None` if it still runs.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let end = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills (by PID) and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- {} ---\n{}", self.log.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        self.kill();
    }
}

/// The DER of the first certificate in a PEM file.
pub fn first_der(path: &Path) -> Vec<u8> {
    read_certs(path).remove(0).to_vec()
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
