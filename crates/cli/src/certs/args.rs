//! The flags of `meridian certs` and its long `--help`, which explains every file written.

use std::path::PathBuf;

use clap::Args;

use super::generate::DEFAULT_DAYS;

/// One line for `meridian --help`.
pub const ABOUT: &str =
    "Generate the CAs and the TLS certificates of every member of a topology, and client certificates";

/// `meridian certs --help`: what each file is for and who must trust what.
pub const LONG_ABOUT: &str = "\
Generate the CAs and the TLS certificates of every member of a topology, and client certificates.

Files written under --out-dir DIR (PEM; keys ECDSA P-256, PKCS#8, mode 0600; directories 0700):

  ca.crt, ca.key            the client CA: signs every member's server certificate and every client
                            certificate. Clients trust ca.crt (etcdctl --cacert); members trust it for
                            client certificates (--trusted-ca-file).
  peer-ca.crt, peer-ca.key  the peer CA: signs peer certificates ONLY. Peer listeners trust only
                            peer-ca.crt (--peer-trusted-ca-file), so a client certificate is never
                            accepted as a member.
  <member>/server.crt, <member>/server.key
                            the member's client and admin listeners (--cert-file, --key-file):
                            CN = member name; SANs = the hosts of client_url and admin_url, localhost
                            and 127.0.0.1; extended key usage serverAuth; signed by ca.crt.
  <member>/peer.crt, <member>/peer.key
                            the member on the peer link, both ways (--peer-cert-file, --peer-key-file):
                            CN = member name; SAN = exactly the host of its peer_url, which is how other
                            members recognise it; serverAuth and clientAuth; signed by peer-ca.crt.
  clients/<name>.crt, clients/<name>.key
                            one per --client NAME (default: root): CN = NAME (the etcd user under
                            --client-cert-auth); clientAuth; signed by ca.crt (etcdctl --cert, --key).

CAs are valid ten years (or --days if longer); other certificates --days from one hour ago (clock skew).
If ca.crt and ca.key (or peer-ca.crt and peer-ca.key) exist in DIR they are reused, so certificates made
later (a new member, a new client) are trusted by everything made before. An existing member or client
certificate is never overwritten without --force.";

/// Flags of `meridian certs`.
#[derive(Args, Debug, Clone)]
pub struct CertsArgs {
    /// The topology file: one server and one peer certificate per member, named from its URLs.
    #[arg(long, value_name = "FILE")]
    pub topology: PathBuf,
    /// Directory to write into (created 0700 if missing); an existing CA there is reused.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// A client certificate with this common name (repeatable; default: one client, `root`).
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
    /// Validity of member and client certificates, in days.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: u32,
    /// Replace existing member and client certificates (the CAs are always kept).
    #[arg(long)]
    pub force: bool,
}
