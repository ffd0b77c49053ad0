//! Why a failover record or decision input is unusable.

/// Errors of the failover crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record stored under the reserved prefix did not parse.
    #[error("failover: record under {key} is not valid JSON")]
    BadRecord {
        /// The key holding the record.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The failover crate's result.
pub type Result<T> = std::result::Result<T, Error>;
