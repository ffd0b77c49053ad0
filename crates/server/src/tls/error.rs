//! Why TLS material could not be loaded or used.

use std::path::PathBuf;

/// A TLS file that cannot be read, parsed or combined into a rustls configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM of the expected kind.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected or wrong (never the file's content).
        what: String,
    },
    /// A certificate could not be parsed as X.509.
    #[error("{path}: not a valid X.509 certificate: {reason}")]
    X509 {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("{what}")]
    Rustls {
        /// Which configuration was being built.
        what: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The trust anchors could not be turned into a verifier.
    #[error("{what}")]
    Verifier {
        /// Which verifier.
        what: String,
        /// rustls' reason.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}
