//! The error type of the crate. It separates deterministic rejections, which go back to the client and
//! leave the state untouched, from storage failures and corrupt bytes, which are fatal for the node.

use meridian_types::EtcdError;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `meridian-kv`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A deterministic rejection of a request; it goes to the client and changed nothing.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The storage backend failed; fatal for the node. Text only: it travels in a forwarded write's result to
    /// another member, where no cause object survives.
    #[error("backend: {0}")]
    Backend(String),
    /// Bytes read from the backend or a snapshot do not decode.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl Error {
    /// Shorthand for a [`Error::Corrupt`] with a message.
    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }
}
