//! The short report `meridian certs` prints: the files, and the flags of etcdctl and of `meridian server` that
//! use them. Paths and flags only; no key material.

use std::fmt::Write;

use meridian_types::Topology;

use super::CertBundle;
use super::paths::Paths;
use super::write::{Action, Written};

/// The report for a run over `topology` that wrote `written`.
pub fn render(topology: &Topology, paths: &Paths, bundle: &CertBundle, written: &[Written]) -> String {
    let mut out = String::new();
    let dir = paths.dir().display();
    let _ = writeln!(out, "Certificates in {dir}:");
    for w in written {
        let action = match w.action {
            Action::Created => "created ",
            Action::Replaced => "replaced",
            Action::Kept => "kept    ",
        };
        let _ = writeln!(out, "  {action} {}", w.path.display());
    }
    for note in &bundle.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let (ca, _) = paths.client_ca();
    let (peer_ca, _) = paths.peer_ca();
    if let Some(client) = bundle.clients.iter().find(|c| c.name == "root").or(bundle.clients.first()) {
        let (cert, key) = paths.client(&client.name);
        let endpoints: Vec<&str> = topology.members.iter().map(|m| m.client_url.as_str()).collect();
        let _ = writeln!(
            out,
            "\netcdctl as {}:\n  etcdctl --cacert {} --cert {} --key {} --endpoints {}",
            client.name,
            ca.display(),
            cert.display(),
            key.display(),
            endpoints.join(",")
        );
    }
    if let Some(m) = bundle.members.first() {
        let (cert, key) = paths.server(&m.name);
        let (peer_cert, peer_key) = paths.peer(&m.name);
        let _ = writeln!(
            out,
            "\nmeridian server for {} (the others alike, with their own directory):\n  --cert-file {} --key-file {} \
             --trusted-ca-file {} --peer-cert-file {} --peer-key-file {} --peer-trusted-ca-file {}",
            m.name,
            cert.display(),
            key.display(),
            ca.display(),
            peer_cert.display(),
            peer_key.display(),
            peer_ca.display()
        );
    }
    out
}
