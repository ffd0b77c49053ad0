//! Where each file of a run lives under the output directory; the writer, the summary and the `--help` text
//! all name files through here.

use std::path::{Path, PathBuf};

use super::names::CLIENTS_DIR;

/// The layout of an output directory.
#[derive(Clone, Debug)]
pub struct Paths {
    dir: PathBuf,
}

impl Paths {
    /// The layout under `dir`.
    pub fn new(dir: &Path) -> Paths {
        Paths { dir: dir.to_owned() }
    }

    /// The output directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client CA's certificate and key.
    pub fn client_ca(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("ca.crt"), self.dir.join("ca.key"))
    }

    /// The peer CA's certificate and key.
    pub fn peer_ca(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("peer-ca.crt"), self.dir.join("peer-ca.key"))
    }

    /// The directory of one member's files.
    pub fn member_dir(&self, member: &str) -> PathBuf {
        self.dir.join(member)
    }

    /// A member's server certificate and key (client and admin listeners).
    pub fn server(&self, member: &str) -> (PathBuf, PathBuf) {
        let dir = self.member_dir(member);
        (dir.join("server.crt"), dir.join("server.key"))
    }

    /// A member's peer certificate and key.
    pub fn peer(&self, member: &str) -> (PathBuf, PathBuf) {
        let dir = self.member_dir(member);
        (dir.join("peer.crt"), dir.join("peer.key"))
    }

    /// The directory of the client certificates.
    pub fn clients_dir(&self) -> PathBuf {
        self.dir.join(CLIENTS_DIR)
    }

    /// A client's certificate and key.
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.clients_dir();
        (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")))
    }
}
