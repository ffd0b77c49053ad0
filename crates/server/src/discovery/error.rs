//! What a discovery operation can fail with, for the HTTP API and DNS to turn into their own answers (Consul's
//! status codes and texts on the HTTP side).

use meridian_registry::{CheckRef, InstanceRef};
use meridian_types::EtcdError;

/// A discovery operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The request does not make sense (Consul answers 400).
    #[error("{0}")]
    BadRequest(String),
    /// No such instance is registered (Consul: 404 `Unknown service ID`).
    #[error("Unknown service ID {0:?}")]
    UnknownInstance(InstanceRef),
    /// No such check is registered (Consul: 404 `Unknown check ID`).
    #[error("Unknown check ID {0:?}")]
    UnknownCheck(String),
    /// The check exists but is not a TTL check, so it cannot be reported (Consul: 500 `is not a TTL check`).
    #[error("check {0} is not a TTL check")]
    NotTtl(CheckRef),
    /// The store refused or could not take the write (no leader, NOSPACE, a timeout).
    #[error("store: {0}")]
    Store(#[source] EtcdError),
}

impl From<EtcdError> for DiscoveryError {
    fn from(e: EtcdError) -> Self {
        DiscoveryError::Store(e)
    }
}

impl From<meridian_registry::Error> for DiscoveryError {
    fn from(e: meridian_registry::Error) -> Self {
        DiscoveryError::BadRequest(e.message())
    }
}
