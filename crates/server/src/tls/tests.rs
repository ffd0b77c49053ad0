//! The TLS pieces against files made with rcgen: a handshake through `tls_incoming` carries the client
//! certificate's Common Name into the connection info handlers read; reloads switch to good new files, keep the
//! old configuration on bad ones; expiry is reported and warned about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use tonic::transport::server::Connected;

use super::acceptor::{Listener, tls_incoming};
use super::config::{ServerTlsFiles, TlsSettings};
use super::expiry;
use super::reload::{Reloaded, TlsReloader};
use super::verifier::MembershipHosts;
use crate::net::{ClientCertName, ConnInfo, Network, TcpNetwork, client_cert_name, remote_addr};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(dir: &Path) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "test-ca");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
    Ca { cert, key }
}

/// A leaf valid for `days` more days, written to `dir/name.crt|.key`.
fn leaf(ca: &Ca, dir: &Path, name: &str, cn: &str, client: bool, days: i64) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(days as u64 * 86_400)).into();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (crt_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&crt_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (crt_path, key_path)
}

fn settings(dir: &Path, cert: PathBuf, key: PathBuf) -> TlsSettings {
    TlsSettings {
        server: Some(ServerTlsFiles { cert, key, trusted_ca: Some(dir.join("ca.crt")), client_cert_auth: true }),
        client_listener: true,
        ..TlsSettings::default()
    }
}

fn client_config(dir: &Path, client: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(dir.join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in super::identity::certs(Path::new("ca.crt"), &pem).unwrap() {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(super::material::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((crt, key)) => {
            let certs = super::identity::certs(crt, &std::fs::read(crt).unwrap()).unwrap();
            let key = super::identity::key(key, &std::fs::read(key).unwrap()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

#[tokio::test]
async fn the_client_certificate_name_reaches_the_connection_info() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (crt, key) = leaf(&ca, dir.path(), "server", "member", false, 365);
    let alice = leaf(&ca, dir.path(), "alice", "alice", true, 365);
    let tls =
        Arc::new(TlsReloader::load(settings(dir.path(), crt, key), Arc::new(MembershipHosts::default())).unwrap());
    let (addr, incoming) = TcpNetwork.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut incoming = tls_incoming(incoming, tls, Listener::Client);

    // A client without a certificate is refused (with TLS 1.3 it learns so on its first read) and never comes
    // out of the stream: the first connection that does is alice's, made afterwards.
    let anonymous = client_config(dir.path(), None);
    let refused = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        match tokio_rustls::TlsConnector::from(anonymous).connect(name, tcp).await {
            Err(_) => true,
            Ok(mut tls) => {
                use tokio::io::AsyncReadExt;
                let mut byte = [0u8; 1];
                matches!(tls.read(&mut byte).await, Err(_) | Ok(0))
            }
        }
    });
    assert!(refused.await.unwrap(), "a client without a certificate was served");
    let config = client_config(dir.path(), Some(&alice));
    let client = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap()
    });
    let conn = incoming.next().await.unwrap().unwrap();
    let _client = client.await.unwrap();
    assert_eq!(conn.info().client_cert_name, ClientCertName(Some("alice".into())));
    assert!(conn.info().remote_addr.is_some_and(|a| a.ip().is_loopback()));
    // What tonic puts into every request's extensions, and how handlers read it.
    let info: ConnInfo = conn.connect_info();
    let mut req = tonic::Request::new(());
    req.extensions_mut().insert(info);
    assert_eq!(client_cert_name(&req).as_deref(), Some("alice"));
    assert!(remote_addr(&req).is_some());
    assert_eq!(client_cert_name(&tonic::Request::new(())), None, "a plain connection has no name");
}

#[test]
fn reloads_take_good_files_and_keep_the_old_ones_on_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (crt, key) = leaf(&ca, dir.path(), "server", "member", false, 365);
    let tls = TlsReloader::load(settings(dir.path(), crt.clone(), key.clone()), Arc::new(MembershipHosts::default()))
        .unwrap();
    let first = tls.current();
    assert_eq!(tls.reload(), Reloaded::Unchanged);
    assert!(Arc::ptr_eq(&first, &tls.current()));

    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let (new_crt, new_key) = leaf(&ca, &staging, "server", "member", false, 10);
    std::fs::copy(&new_crt, &crt).unwrap();
    // The certificate changed but the key not yet: refused, the old configuration stays.
    assert!(matches!(tls.reload(), Reloaded::Refused(why) if why.contains("do not form a usable identity")));
    assert!(Arc::ptr_eq(&first, &tls.current()));
    assert_eq!(tls.reload(), Reloaded::Unchanged, "the same bad content is reported once");
    std::fs::copy(&new_key, &key).unwrap();
    assert_eq!(tls.reload(), Reloaded::Changed);
    assert!(!Arc::ptr_eq(&first, &tls.current()));

    // The new certificate expires in 10 days: reported and warned about; the CA (generated for rcgen's default
    // validity, years away) is not.
    let now = expiry::unix_now();
    let report = expiry::report(&tls, now);
    let server = report.iter().find(|c| c.file == crt.display().to_string()).unwrap();
    assert_eq!(server.role, "client");
    assert!((9..=10).contains(&server.days_left), "whole days left of ten: {}", server.days_left);
    assert_eq!(expiry::warn_soon_expiring(&tls, now), 1);

    std::fs::write(&crt, "garbage").unwrap();
    assert!(matches!(tls.reload(), Reloaded::Refused(why) if why.contains("CERTIFICATE")));
    assert_eq!(expiry::report(&tls, now).len(), 2, "still the last good files");
}
