//! The admin HTTP API (axum), served on `--listen-admin` when set: `GET /status` (this member's view of the
//! cluster as JSON), `GET /health` (200 when a leader is known, 503 otherwise, like etcd's `/health`),
//! `GET /metrics` (Prometheus text), `/failover` (the failover groups: report, promote, demote, define,
//! remove), and, only with `--enable-fault-injection`, `GET`/`PUT /faults` to read and replace the emulated WAN
//! and partitions. Without the flag those routes do not exist (404).

mod auth;
mod failover;
mod faults;
mod listener;
mod metrics;
mod serve;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

pub use auth::{AdminAuthorizer, RootOrToken, TokenAuthorizer};
pub use failover::Written;
pub use faults::FaultSpec;
pub use listener::IncomingListener;
pub use serve::AdminServer;
pub use status::{AuthSummary, GroupSummary, LeaderInfo, MemberStatus, ReachSummary, StatusReport, VerdictSummary};

use crate::fault::FaultState;
use crate::member::Member;
use crate::tls::TlsReloader;

/// Everything the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The running member.
    pub member: Arc<Member>,
    /// The emulated network; `Some` only when fault injection is enabled, which is what mounts `/faults`.
    pub faults: Option<Arc<FaultState>>,
    /// The member's TLS files, for the certificate expiry in `/status` and `/metrics`.
    pub tls: Option<Arc<TlsReloader>>,
    /// Shown in `/status`: a non-loopback listener runs without TLS by `--insecure-allow-remote`.
    pub insecure_allow_remote: bool,
    /// Who may call the admin API; `None` leaves it open (a loopback listener without TLS and token).
    pub authorizer: Option<Arc<dyn AdminAuthorizer>>,
    /// `/health` and `/metrics` need no token.
    pub open_health_metrics: bool,
    /// The check runner's counters, for `/metrics`.
    pub check_stats: Option<Arc<crate::check_runner::Stats>>,
}

impl AdminState {
    /// An open admin API (no TLS, no token) over `member`.
    pub fn open(member: Arc<Member>, faults: Option<Arc<FaultState>>) -> AdminState {
        AdminState {
            member,
            faults,
            tls: None,
            insecure_allow_remote: false,
            authorizer: None,
            open_health_metrics: true,
            check_stats: None,
        }
    }
}

/// The admin API's routes over `state`.
pub fn router(state: AdminState) -> Router {
    let mut router = Router::new()
        .route("/status", get(status::get_status))
        .route("/health", get(status::get_health))
        .route("/metrics", get(metrics::get_metrics))
        .route("/failover", get(failover::get_failover))
        .route("/failover/groups/{name}", put(failover::put_group).delete(failover::delete_group))
        .route("/failover/{group}/promote", post(failover::promote))
        .route("/failover/{group}/demote", post(failover::demote));
    if state.faults.is_some() {
        router = router.route("/faults", get(faults::get_faults).put(faults::put_faults));
    }
    router.layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_admin)).with_state(state)
}

#[cfg(test)]
mod tests;
