//! Tests of `meridian certs`: the generated PEMs parsed back (names, key usages, issuers, validity), chains
//! checked with rustls' own verifiers, real TLS handshakes over loopback, CA reuse, and the files' modes.

mod chain;
mod files;
mod handshake;
mod parse;
mod reuse;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meridian_types::Topology;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::generate::{CertBundle, CertOptions, generate_for_topology};

/// Three members: a1 on 127.0.0.1 throughout; b1 on 127.0.0.2 with its admin API under a DNS name; c1 with a
/// DNS peer host and a plain-http client URL (certificates are made whatever the scheme).
pub const TOPOLOGY: &str = r#"
[[members]]
name = "a1"
dc = "dc-a"
zone = "a-1"
peer_url = "https://127.0.0.1:2380"
client_url = "https://127.0.0.1:2379"
admin_url = "https://127.0.0.1:2381"

[[members]]
name = "b1"
dc = "dc-b"
zone = "b-1"
peer_url = "https://127.0.0.2:2380"
client_url = "https://127.0.0.2:2379"
admin_url = "https://b1.dc-b.example:2381"

[[members]]
name = "c1"
dc = "dc-c"
zone = "c-1"
peer_url = "https://c1-peer.example:2380/"
client_url = "http://10.0.0.3:2379"
"#;

/// The fixed instant the tests generate at (2026-01-01T00:00:00Z), so validity checks are exact.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

pub fn topology() -> Topology {
    Topology::from_toml(TOPOLOGY).unwrap()
}

/// A bundle for [`TOPOLOGY`] at [`now`], clients `root` and `app`.
pub fn bundle() -> CertBundle {
    let mut opts = CertOptions::new(now());
    opts.clients = vec!["root".into(), "app".into()];
    generate_for_topology(&topology(), &opts).unwrap()
}

pub fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

pub fn key(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Runs `f` on the parsed certificate of `pem`.
pub fn with_cert<R>(pem: &str, f: impl FnOnce(&X509Certificate<'_>) -> R) -> R {
    let der = der(pem);
    let (rest, cert) = X509Certificate::from_der(&der).unwrap();
    assert!(rest.is_empty());
    f(&cert)
}

pub fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned()
}

/// The SANs as `DNS:name` and `IP:address`, in certificate order.
pub fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(ext) = cert.subject_alternative_name().unwrap() else { return Vec::new() };
    ext.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => format!("DNS:{dns}"),
            GeneralName::IPAddress(bytes) => {
                let ip: IpAddr = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).unwrap().into(),
                    _ => <[u8; 16]>::try_from(*bytes).unwrap().into(),
                };
                format!("IP:{ip}")
            }
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

/// (serverAuth, clientAuth) of the extended key usage, which every leaf must carry.
pub fn ekus(cert: &X509Certificate<'_>) -> (bool, bool) {
    let eku = cert.extended_key_usage().unwrap().expect("an extended key usage extension");
    assert!(!eku.value.any, "anyExtendedKeyUsage would let a certificate serve any role");
    (eku.value.server_auth, eku.value.client_auth)
}

/// The ring provider, the project's choice (aws-lc-rs needs cmake). rustls deprecated it for lacking post-quantum
/// key exchange, which does not matter to what these tests check.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn roots(ca_pem: &str) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(der(ca_pem)).unwrap();
    Arc::new(roots)
}

/// The verifiers' clock: [`now`] plus `offset`.
pub fn at(offset: Duration) -> UnixTime {
    UnixTime::since_unix_epoch((now() + offset).duration_since(SystemTime::UNIX_EPOCH).unwrap())
}
