//! Calling a failover group's hooks, behind the [`HookRunner`] trait: the real runner ([`ProcessHooks`]) POSTs
//! to webhooks and runs commands; the simulation and tests plug in [`RecordingHooks`], which touches nothing
//! outside. A runner does not bound a call: the caller drops it when the hook's timeout runs out (which kills a
//! command), so a hanging hook never holds anything up.

mod process;
mod recording;

use meridian_failover::HookCall;
use meridian_types::Hook;

pub use process::ProcessHooks;
pub use recording::{RecordedCall, RecordingHooks};

/// Why a hook did not acknowledge.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The webhook's host could not be reached.
    #[error("connecting to {to}")]
    Connect {
        /// `host:port`.
        to: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The https webhook's CAs could not be loaded.
    #[error("loading the CAs of {path}")]
    Trust {
        /// The CA bundle.
        path: String,
        /// The cause.
        #[source]
        source: crate::tls::error::TlsError,
    },
    /// The TLS handshake with an https webhook failed (its certificate not trusted, say).
    #[error("TLS handshake with {to}")]
    Tls {
        /// `host:port`.
        to: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange with the webhook failed.
    #[error("HTTP exchange")]
    Http(#[source] hyper::Error),
    /// The webhook's request could not be built (a URL that parsed but http refuses).
    #[error("building the request")]
    Request(#[source] hyper::http::Error),
    /// The webhook answered, but not with 2xx.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The command could not be started.
    #[error("starting {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The command exited with a failure.
    #[error("exited with {status}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Exit {
        /// The exit status, as the OS describes it.
        status: String,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
}

/// Calls hooks.
#[async_trait::async_trait]
pub trait HookRunner: Send + Sync {
    /// Calls `hook` once with `call`; `Ok` when it acknowledged.
    async fn call(&self, hook: &Hook, call: &HookCall) -> Result<(), HookError>;
}
