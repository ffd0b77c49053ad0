//! A second run signs with the first run's CAs: new certificates chain to the unchanged `ca.crt`, and a CA that
//! cannot be reused (wrong key, not a CA, expired, garbage) is refused with a reason instead of replaced.

use std::time::Duration;

use rustls::server::WebPkiClientVerifier;

use super::*;
use crate::certs::pem::{ExistingCa, PemPair};

fn existing(pems: &PemPair) -> Option<ExistingCa> {
    Some(ExistingCa { origin: "out/ca.crt".into(), pems: pems.clone() })
}

#[test]
fn a_second_run_keeps_both_cas_and_its_certificates_chain_to_them() {
    let first = bundle();
    let mut opts = CertOptions::new(now() + Duration::from_secs(86_400));
    opts.client_ca = existing(&first.client_ca.pems);
    opts.peer_ca = existing(&first.peer_ca.pems);
    let second = generate_for_topology(&topology(), &opts).unwrap();
    assert!(second.client_ca.reused && second.peer_ca.reused);
    assert_eq!(second.client_ca.pems, first.client_ca.pems);
    assert_eq!(second.peer_ca.pems, first.peer_ca.pems);
    assert_ne!(second.clients[0].pems, first.clients[0].pems, "leaves are new");

    let t = at(Duration::from_secs(2 * 86_400));
    let verify = |ca: &str, cert: &str| {
        let v = WebPkiClientVerifier::builder_with_provider(roots(ca), provider()).build().unwrap();
        v.verify_client_cert(&der(cert), &[], t).is_ok()
    };
    assert!(verify(&first.client_ca.pems.cert_pem, &second.clients[0].pems.cert_pem));
    assert!(verify(&first.peer_ca.pems.cert_pem, &second.members[2].peer.cert_pem));
    assert!(!verify(&first.client_ca.pems.cert_pem, &second.members[2].peer.cert_pem));
    // The issuer fields are byte-for-byte the CA's subject, as chain building needs.
    let subject = with_cert(&first.client_ca.pems.cert_pem, |c| c.subject().as_raw().to_vec());
    assert_eq!(with_cert(&second.members[0].server.cert_pem, |c| c.issuer().as_raw().to_vec()), subject);
}

#[test]
fn a_ca_that_cannot_be_reused_is_refused_with_the_reason() {
    let b = bundle();
    let refuse = |pems: PemPair, at: SystemTime| {
        let mut opts = CertOptions::new(at);
        opts.client_ca = existing(&pems);
        generate_for_topology(&topology(), &opts).unwrap_err().to_string()
    };
    let later = now() + Duration::from_secs(3651 * 86_400);
    let cases = [
        (PemPair { key_pem: b.peer_ca.pems.key_pem.clone(), ..b.client_ca.pems.clone() }, now(), "does not belong"),
        (b.clients[0].pems.clone(), now(), "not a CA"),
        (b.client_ca.pems.clone(), later, "expired"),
        (PemPair { cert_pem: "not a certificate".into(), ..b.client_ca.pems.clone() }, now(), "not a PEM certificate"),
        (
            PemPair {
                key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
                ..b.client_ca.pems.clone()
            },
            now(),
            "not a PKCS#8 PEM private key",
        ),
    ];
    for (pems, at, reason) in cases {
        let msg = refuse(pems, at);
        assert!(msg.starts_with("out/ca.crt: ") && msg.contains(reason), "{msg:?} should give {reason:?}");
        assert!(!msg.contains("PRIVATE KEY") && !msg.contains("AAAA"), "no key material in errors: {msg}");
    }
}

#[test]
fn a_reused_ca_expiring_before_the_new_certificates_is_noted() {
    let first = bundle();
    let mut opts = CertOptions::new(now() + Duration::from_secs(3600 * 86_400));
    opts.client_ca = existing(&first.client_ca.pems);
    let second = generate_for_topology(&topology(), &opts).unwrap();
    assert_eq!(second.notes.len(), 1, "{:?}", second.notes);
    assert!(second.notes[0].starts_with("ca.crt expires on"));
}
