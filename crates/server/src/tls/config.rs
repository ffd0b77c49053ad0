//! The typed TLS settings of a member, read off its config once it is validated
//! (`ServerConfig::tls_settings`): which listeners speak TLS and from which files. An `https://` listen URL means
//! TLS on that listener; `http://` means plain.

use std::path::PathBuf;

/// TLS of the client listener (and of the admin listener, which serves the same certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The member's server certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA bundle client certificates are verified against.
    pub trusted_ca: Option<PathBuf>,
    /// Require a client certificate (otherwise one is verified only if offered).
    pub client_cert_auth: bool,
}

/// TLS between members: always mutual, both ends verified against the peer CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTlsFiles {
    /// The member's peer certificate chain (PEM); presented as server and as client.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The peer CA bundle.
    pub trusted_ca: PathBuf,
}

/// Which links of a member use TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Client certificate files, when configured (used by the client listener and the admin listener).
    pub server: Option<ServerTlsFiles>,
    /// Peer certificate files, when configured (used by the peer listener and every dial of a peer).
    pub peer: Option<PeerTlsFiles>,
    /// The client listener is `https://`.
    pub client_listener: bool,
    /// The peer listener is `https://`.
    pub peer_listener: bool,
    /// The admin listener is `https://`.
    pub admin_listener: bool,
    /// The Consul-compatible HTTP listener is `https://`.
    pub http_listener: bool,
}

impl TlsSettings {
    /// Whether any TLS is configured at all (no file watching, no TLS code otherwise).
    pub fn any(&self) -> bool {
        self.server.is_some() || self.peer.is_some()
    }
}
