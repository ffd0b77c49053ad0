//! Writing a bundle: the layout, modes (directories 0700, keys 0600, certificates 0644), refusing to overwrite
//! without `force`, and reading the CAs back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::certs::error::CertError;
use crate::certs::paths::Paths;
use crate::certs::write::{Action, read_existing_cas, write_bundle};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_bundle_is_written_with_private_modes_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths::new(&tmp.path().join("pki/out"));
    let b = bundle();
    let written = write_bundle(&paths, &b, false).unwrap();
    // 2 CAs, 3 members x 2, 2 clients: a certificate and a key each.
    assert_eq!(written.len(), 2 * (2 + 6 + 2));
    assert!(written.iter().all(|w| w.action == Action::Created));
    for w in &written {
        let want = if w.path.extension().unwrap() == "key" { 0o600 } else { 0o644 };
        assert_eq!(mode(&w.path), want, "{}", w.path.display());
    }
    for dir in [paths.dir().to_owned(), paths.member_dir("a1"), paths.clients_dir(), tmp.path().join("pki")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    assert_eq!(fs::read_to_string(paths.server("b1").0).unwrap(), b.members[1].server.cert_pem);
    assert_eq!(fs::read_to_string(paths.client("app").1).unwrap(), b.clients[1].pems.key_pem);
    let leftovers: Vec<_> = fs::read_dir(paths.member_dir("a1")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 4, "no temporary files left: {leftovers:?}");

    let (client_ca, peer_ca) = read_existing_cas(&paths).unwrap();
    assert_eq!(client_ca.unwrap().pems, b.client_ca.pems);
    assert_eq!(peer_ca.unwrap().pems, b.peer_ca.pems);
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths::new(tmp.path());
    let first = bundle();
    write_bundle(&paths, &first, false).unwrap();

    let mut opts = CertOptions::new(now());
    let (client_ca, peer_ca) = read_existing_cas(&paths).unwrap();
    (opts.client_ca, opts.peer_ca) = (client_ca, peer_ca);
    let second = generate_for_topology(&topology(), &opts).unwrap();
    match write_bundle(&paths, &second, false) {
        Err(CertError::Exists(path)) => assert_eq!(path, paths.server("a1").0),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(paths.server("a1").0).unwrap(), first.members[0].server.cert_pem, "untouched");

    let written = write_bundle(&paths, &second, true).unwrap();
    let action = |p: &Path| written.iter().find(|w| w.path == p).map(|w| w.action);
    assert_eq!(action(&paths.client_ca().0), Some(Action::Kept));
    assert_eq!(action(&paths.server("a1").1), Some(Action::Replaced));
    assert_eq!(fs::read_to_string(paths.server("a1").0).unwrap(), second.members[0].server.cert_pem);
    assert_eq!(mode(&paths.server("a1").1), 0o600);
    assert_eq!(fs::read_to_string(paths.client_ca().0).unwrap(), first.client_ca.pems.cert_pem);
}

#[test]
fn half_a_ca_is_an_error_naming_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths::new(tmp.path());
    write_bundle(&paths, &bundle(), false).unwrap();
    fs::remove_file(paths.peer_ca().1).unwrap();
    let msg = read_existing_cas(&paths).unwrap_err().to_string();
    assert!(msg.contains("peer-ca.crt exists but") && msg.contains("peer-ca.key does not"), "{msg}");
}

#[test]
fn a_new_ca_never_replaces_an_existing_one_even_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths::new(tmp.path());
    let first = bundle();
    write_bundle(&paths, &first, false).unwrap();
    // A second bundle made without reading the CAs back carries new CAs.
    let second = bundle();
    match write_bundle(&paths, &second, true) {
        Err(CertError::CaExists(path)) => assert_eq!(path, paths.client_ca().0),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(paths.client_ca().0).unwrap(), first.client_ca.pems.cert_pem);
    assert_eq!(fs::read_to_string(paths.server("a1").0).unwrap(), first.members[0].server.cert_pem);
}
