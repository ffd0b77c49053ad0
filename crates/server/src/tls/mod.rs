//! TLS (rustls with the `ring` provider, no OpenSSL) on every real link of a member: the client, peer and admin
//! listeners and every dial of a peer. `config` says which links use TLS and from which files, `identity` reads
//! PEM files and certificates, `material` builds the rustls configurations, `reload` re-reads the files when
//! they change, `verifier` checks client and peer certificates, `acceptor` and `connector` wrap the network
//! seam's connections, `expiry` reports and warns about certificate expiry. The simulation never sets TLS.

pub mod acceptor;
pub mod config;
pub mod connector;
pub mod error;
pub mod expiry;
pub mod identity;
pub mod material;
pub mod reload;
pub mod verifier;

pub use config::TlsSettings;
pub use error::TlsError;
pub use reload::TlsReloader;

#[cfg(test)]
mod tests;
