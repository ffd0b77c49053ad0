//! Why `meridian certs` refused or failed: one enum for generation and writing, so the playground and tests can
//! tell a refused overwrite from a bad topology or a broken CA.

use std::path::PathBuf;

/// Everything that can go wrong while making or writing the certificates. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The topology has no members to make certificates for.
    #[error("the topology lists no members")]
    NoMembers,
    /// A member or client name that cannot be a file name (it names a directory or file under the output dir).
    #[error("{what} name {name:?} cannot be used: {why}")]
    BadName {
        /// `member` or `client`.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two members, or two clients, share a name.
    #[error("{what} name {name:?} is given twice")]
    DuplicateName {
        /// `member` or `client`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A member URL whose host cannot be read.
    #[error("member {member}: {field} {url:?} has no usable host ({why}); expected http(s)://HOST:PORT")]
    BadUrl {
        /// The member.
        member: String,
        /// `peer_url`, `client_url` or `admin_url`.
        field: &'static str,
        /// The URL as written.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// `--days` out of range.
    #[error("--days must be between 1 and {max}, not {days}")]
    BadDays {
        /// The value given.
        days: u32,
        /// The largest accepted.
        max: u32,
    },
    /// An existing CA certificate or key that cannot be reused.
    #[error("{origin}: {why}")]
    BadCa {
        /// Which file (as the writer found it, e.g. `certs/ca.crt`).
        origin: String,
        /// What is wrong with it.
        why: String,
    },
    /// Only one half of a CA exists in the output directory.
    #[error(
        "{present} exists but {missing} does not: restore it, or remove {present} too to create a new CA \
         (every certificate the old one signed must then be reissued)"
    )]
    HalfCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The bundle carries a new CA where a CA exists already (an in-process caller did not pass the old one).
    #[error(
        "{0} exists and would be replaced by a new CA, which would untrust everything the old one signed; \
         reuse it (read_existing_cas) or remove it first"
    )]
    CaExists(PathBuf),
    /// A certificate or key the run would write exists already.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// rcgen refused to build a key or certificate.
    #[error("generating {what}")]
    Generate {
        /// Which certificate or key.
        what: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// A file or directory operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. `writing`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}
