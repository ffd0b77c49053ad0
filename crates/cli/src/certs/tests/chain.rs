//! The chains as rustls' WebPKI verifiers see them: each certificate is accepted under its own CA, for its own
//! role and names, and refused under the other CA — above all, no client certificate passes a peer listener.

use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::ServerName;

use super::*;

fn client_verifier(ca_pem: &str) -> Arc<dyn ClientCertVerifier> {
    WebPkiClientVerifier::builder_with_provider(roots(ca_pem), provider()).build().unwrap()
}

fn server_verifier(ca_pem: &str) -> Arc<dyn ServerCertVerifier> {
    WebPkiServerVerifier::builder_with_provider(roots(ca_pem), provider()).build().unwrap()
}

/// Whether `cert_pem`, presented as a client certificate, passes a verifier rooted at `ca_pem` a minute after
/// generation.
fn client_ok(ca_pem: &str, cert_pem: &str) -> bool {
    client_verifier(ca_pem).verify_client_cert(&der(cert_pem), &[], at(Duration::from_secs(60))).is_ok()
}

/// Whether `cert_pem`, presented by a server reached as `host`, passes a verifier rooted at `ca_pem`.
fn server_ok(ca_pem: &str, cert_pem: &str, host: &str) -> bool {
    let name = ServerName::try_from(host.to_owned()).unwrap();
    server_verifier(ca_pem).verify_server_cert(&der(cert_pem), &[], &name, &[], at(Duration::from_secs(60))).is_ok()
}

#[test]
fn server_certificates_verify_under_the_client_ca_for_their_hosts_only() {
    let b = bundle();
    let ca = &b.client_ca.pems.cert_pem;
    let b1 = &b.members[1].server.cert_pem;
    for host in ["127.0.0.2", "b1.dc-b.example", "localhost", "127.0.0.1"] {
        assert!(server_ok(ca, b1, host), "b1's server certificate for {host}");
    }
    assert!(!server_ok(ca, b1, "127.0.0.3"), "a host the certificate does not name");
    assert!(!server_ok(&b.peer_ca.pems.cert_pem, b1, "127.0.0.2"), "the peer CA never signs server certificates");
    assert!(!client_ok(ca, b1), "serverAuth only: not usable as a client certificate");
}

#[test]
fn peer_certificates_chain_to_the_peer_ca_and_not_to_the_client_ca() {
    let b = bundle();
    let (ca, peer_ca) = (&b.client_ca.pems.cert_pem, &b.peer_ca.pems.cert_pem);
    for (m, host) in b.members.iter().zip(["127.0.0.1", "127.0.0.2", "c1-peer.example"]) {
        let peer = &m.peer.cert_pem;
        assert!(client_ok(peer_ca, peer), "{}'s peer certificate dialling out", m.name);
        assert!(server_ok(peer_ca, peer, host), "{}'s peer certificate answering on {host}", m.name);
        assert!(!client_ok(ca, peer), "{}'s peer certificate must not chain to the client CA", m.name);
        assert!(!server_ok(ca, peer, host));
    }
    // The peer URL host is the identity: a1's peer certificate does not pass for b1's host.
    assert!(!server_ok(peer_ca, &b.members[0].peer.cert_pem, "127.0.0.2"));
}

#[test]
fn client_certificates_pass_the_client_ca_and_never_the_peer_ca() {
    let b = bundle();
    for c in &b.clients {
        assert!(client_ok(&b.client_ca.pems.cert_pem, &c.pems.cert_pem), "client {}", c.name);
        assert!(!client_ok(&b.peer_ca.pems.cert_pem, &c.pems.cert_pem), "client {} at a peer listener", c.name);
    }
}

#[test]
fn certificates_are_valid_from_an_hour_before_generation_until_they_expire() {
    let b = bundle();
    let (ca, root) = (&b.client_ca.pems.cert_pem, &b.clients[0].pems.cert_pem);
    let verify = |t| client_verifier(ca).verify_client_cert(&der(root), &[], t).is_ok();
    let before = |secs: u64| {
        let earlier = now() - Duration::from_secs(secs);
        UnixTime::since_unix_epoch(earlier.duration_since(SystemTime::UNIX_EPOCH).unwrap())
    };
    assert!(verify(before(59 * 60)), "a clock 59 minutes behind still accepts it");
    assert!(!verify(before(61 * 60)));
    assert!(verify(at(Duration::from_secs(364 * 86_400))));
    assert!(!verify(at(Duration::from_secs(366 * 86_400))), "expired after 365 days");
}
