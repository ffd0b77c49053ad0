//! Every generated certificate parsed back: common names, SANs, extended key usages, issuers, validity.

use std::time::SystemTime;

use super::*;
use crate::certs::generate::{CLIENT_CA_NAME, PEER_CA_NAME};

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[test]
fn server_certificates_name_the_client_and_admin_hosts_plus_localhost() {
    let b = bundle();
    let expected = [
        ("a1", vec!["IP:127.0.0.1", "DNS:localhost"]),
        ("b1", vec!["IP:127.0.0.2", "DNS:b1.dc-b.example", "DNS:localhost", "IP:127.0.0.1"]),
        ("c1", vec!["IP:10.0.0.3", "DNS:localhost", "IP:127.0.0.1"]),
    ];
    assert_eq!(b.members.len(), expected.len());
    for (m, (name, want)) in b.members.iter().zip(expected) {
        assert_eq!(m.name, name);
        with_cert(&m.server.cert_pem, |c| {
            assert_eq!(common_name(c), name);
            assert_eq!(sans(c), want, "{name} server SANs");
            assert_eq!(ekus(c), (true, false), "{name} server: serverAuth only");
            assert!(!c.is_ca());
        });
    }
}

#[test]
fn peer_certificates_carry_exactly_the_peer_url_host() {
    let b = bundle();
    let expected = [("a1", "IP:127.0.0.1"), ("b1", "IP:127.0.0.2"), ("c1", "DNS:c1-peer.example")];
    for (m, (name, want)) in b.members.iter().zip(expected) {
        with_cert(&m.peer.cert_pem, |c| {
            assert_eq!(common_name(c), name);
            assert_eq!(sans(c), vec![want], "{name} peer SAN");
            assert_eq!(ekus(c), (true, true), "{name} peer: serverAuth and clientAuth (mutual TLS)");
        });
    }
}

#[test]
fn client_certificates_are_named_after_the_client_and_only_authenticate_clients() {
    let b = bundle();
    let names: Vec<_> = b.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["root", "app"]);
    for client in &b.clients {
        with_cert(&client.pems.cert_pem, |c| {
            assert_eq!(common_name(c), client.name);
            assert_eq!(ekus(c), (false, true));
            assert!(sans(c).is_empty());
        });
    }
}

#[test]
fn each_certificate_names_the_right_ca_as_issuer() {
    let b = bundle();
    let client_ca = with_cert(&b.client_ca.pems.cert_pem, |c| {
        assert!(c.is_ca());
        assert_eq!(common_name(c), CLIENT_CA_NAME);
        c.subject().as_raw().to_vec()
    });
    let peer_ca = with_cert(&b.peer_ca.pems.cert_pem, |c| {
        assert!(c.is_ca());
        assert_eq!(common_name(c), PEER_CA_NAME);
        c.subject().as_raw().to_vec()
    });
    assert_ne!(client_ca, peer_ca);
    let issuer = |pem: &str| with_cert(pem, |c| c.issuer().as_raw().to_vec());
    for m in &b.members {
        assert_eq!(issuer(&m.server.cert_pem), client_ca, "{} server", m.name);
        assert_eq!(issuer(&m.peer.cert_pem), peer_ca, "{} peer", m.name);
    }
    for c in &b.clients {
        assert_eq!(issuer(&c.pems.cert_pem), client_ca, "client {}", c.name);
    }
    assert!(!b.client_ca.reused && !b.peer_ca.reused);
    assert!(b.notes.is_empty(), "{:?}", b.notes);
}

#[test]
fn validity_starts_an_hour_early_and_lasts_the_requested_days() {
    let mut opts = CertOptions::new(now());
    opts.days = 30;
    let b = generate_for_topology(&topology(), &opts).unwrap();
    let now = unix(now());
    let span =
        |pem: &str| with_cert(pem, |c| (c.validity().not_before.timestamp(), c.validity().not_after.timestamp()));
    for pem in [&b.members[0].server.cert_pem, &b.members[1].peer.cert_pem, &b.clients[0].pems.cert_pem] {
        assert_eq!(span(pem), (now - HOUR, now + 30 * DAY));
    }
    for ca in [&b.client_ca.pems.cert_pem, &b.peer_ca.pems.cert_pem] {
        assert_eq!(span(ca), (now - HOUR, now + 3650 * DAY), "a CA lasts ten years");
    }
    opts.days = 5000;
    let b = generate_for_topology(&topology(), &opts).unwrap();
    assert_eq!(span(&b.client_ca.pems.cert_pem).1, now + 5000 * DAY, "a CA outlives longer --days");
}

#[test]
fn keys_are_ecdsa_p256_and_fresh_for_every_certificate() {
    let b = bundle();
    let mut keys = std::collections::BTreeSet::new();
    let pairs = [&b.client_ca.pems, &b.peer_ca.pems]
        .into_iter()
        .chain(b.members.iter().flat_map(|m| [&m.server, &m.peer]))
        .chain(b.clients.iter().map(|c| &c.pems));
    for pems in pairs {
        assert!(pems.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(keys.insert(pems.key_pem.clone()), "a key was used twice");
        with_cert(&pems.cert_pem, |c| {
            let alg = c.public_key().algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            assert_eq!(alg.map(|oid| oid.to_id_string()).as_deref(), Some("1.2.840.10045.3.1.7"), "P-256");
        });
        assert!(!format!("{pems:?}").contains("PRIVATE KEY"), "Debug must not show the key");
    }
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let mut opts = CertOptions::new(now());
    let err = |topo: &Topology, opts: &CertOptions| generate_for_topology(topo, opts).unwrap_err().to_string();

    opts.days = 0;
    assert!(err(&topology(), &opts).contains("--days"));
    opts.days = 365;

    opts.clients = vec!["root".into(), "root".into()];
    assert!(err(&topology(), &opts).contains("\"root\" is given twice"));
    opts.clients = vec!["../etc".into()];
    assert!(err(&topology(), &opts).contains("\"../etc\""));
    opts.clients = vec!["root".into()];

    let mut topo = topology();
    topo.members[1].peer_url = "https://:2380".into();
    assert!(err(&topo, &opts).contains("member b1: peer_url"), "{}", err(&topo, &opts));
    let mut topo = topology();
    topo.members[0].admin_url = Some("ftp://127.0.0.1:21".into());
    assert!(err(&topo, &opts).contains("admin_url"));
    let mut topo = topology();
    topo.members[0].name.0 = "clients".into();
    assert!(err(&topo, &opts).contains("\"clients\""));
    let mut topo = topology();
    topo.members.clear();
    assert!(err(&topo, &opts).contains("no members"));
}

#[test]
fn members_sharing_a_peer_host_are_noted() {
    assert!(bundle().notes.is_empty(), "every fixture member has its own peer host");
    let mut topo = topology();
    topo.members[2].peer_url = "https://127.0.0.1:2480".into();
    let b = generate_for_topology(&topo, &CertOptions::new(now())).unwrap();
    assert_eq!(b.notes.len(), 1, "{:?}", b.notes);
    assert!(b.notes[0].starts_with("a1, c1 share the peer host 127.0.0.1"), "{}", b.notes[0]);
}
