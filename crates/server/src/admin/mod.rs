//! The admin HTTP API (axum), served on `--listen-admin` when set: `GET /status` (this member's view of the
//! cluster as JSON), `GET /health` (200 when a leader is known, 503 otherwise, like etcd's `/health`),
//! `GET /metrics` (Prometheus text), and, only with `--enable-fault-injection`, `GET`/`PUT /faults` to read and
//! replace the emulated WAN and partitions. Without the flag those routes do not exist (404).

mod faults;
mod metrics;
mod serve;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use faults::FaultSpec;
pub use serve::AdminServer;
pub use status::{AuthSummary, LeaderInfo, MemberStatus, StatusReport};

use crate::fault::FaultState;
use crate::member::Member;

/// Everything the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The running member.
    pub member: Arc<Member>,
    /// The emulated network; `Some` only when fault injection is enabled, which is what mounts `/faults`.
    pub faults: Option<Arc<FaultState>>,
}

/// The admin API's routes over `state`.
pub fn router(state: AdminState) -> Router {
    let mut router = Router::new()
        .route("/status", get(status::get_status))
        .route("/health", get(status::get_health))
        .route("/metrics", get(metrics::get_metrics));
    if state.faults.is_some() {
        router = router.route("/faults", get(faults::get_faults).put(faults::put_faults));
    }
    router.with_state(state)
}

#[cfg(test)]
mod tests;
