//! `meridian certs`: a CA pair and TLS certificates for every member of a topology, plus client certificates.
//!
//! Two CAs keep the peer link closed to clients: the client CA (`ca.crt`) signs the members' server
//! certificates and the client certificates; the peer CA (`peer-ca.crt`) signs peer certificates only, and peer
//! listeners trust nothing else. A peer certificate's only SAN is the host of its member's peer URL, the
//! member's identity on that link.
//!
//! - `args`: flags and the long `--help`; `names`: file-safe names and URL hosts as SANs;
//! - `ca`: making or reusing a CA; `generate`: the pure [`generate_for_topology`] (PEM texts, no I/O);
//! - `paths`: the file layout; `write`: reading CAs back and writing files with private modes;
//! - `summary`: what the command prints; `error`: [`CertError`].

mod args;
mod ca;
mod error;
mod generate;
mod names;
mod paths;
mod pem;
mod summary;
mod write;

use std::time::SystemTime;

use anyhow::Context;
use meridian_types::Topology;

pub use args::{ABOUT, CertsArgs, LONG_ABOUT};
pub use error::CertError;
pub use generate::{CertBundle, CertOptions, generate_for_topology};
pub use paths::Paths;
pub use write::{read_existing_cas, write_bundle};

/// Runs `meridian certs`: reads the topology, reuses the CAs found in the output directory, writes every
/// certificate and prints the summary.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.topology)
        .with_context(|| format!("reading topology {}", args.topology.display()))?;
    let topology = Topology::from_toml(&text).with_context(|| args.topology.display().to_string())?;
    let paths = Paths::new(&args.out_dir);
    let (client_ca, peer_ca) = read_existing_cas(&paths)?;
    let mut opts = CertOptions::new(SystemTime::now());
    if !args.clients.is_empty() {
        opts.clients = args.clients;
    }
    opts.days = args.days;
    opts.client_ca = client_ca;
    opts.peer_ca = peer_ca;
    let bundle = generate_for_topology(&topology, &opts)?;
    let written = write_bundle(&paths, &bundle, args.force)?;
    print!("{}", summary::render(&topology, &paths, &bundle, &written));
    Ok(())
}

#[cfg(test)]
mod tests;
