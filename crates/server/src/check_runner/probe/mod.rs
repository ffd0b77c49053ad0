//! The probes: the only part of the runner that touches sockets. Each performs one [`ProbeOrder`] over the
//! member's [`Network`] (tokio TCP in a real server, the simulated fabric in the simulation), bounded by the
//! check's timeout, and hands the raw result to the registry's judge, which says pass, warn or fail and writes the
//! output: [`http`] (`HttpCheck::judge`; `https://` through [`tls`]), [`tcp`] (`TcpCheck::judge`), [`grpc`]
//! (`GrpcCheck::judge`).

pub mod grpc;
pub mod http;
pub mod tcp;
pub mod tls;

use std::sync::Arc;

use meridian_registry::Outcome;
use meridian_registry::check::CheckKind;
use meridian_registry::time::format_duration;

use super::core::{ProbeOrder, ProbeResult};
use crate::net::Network;

/// Performs `order`; a probe that outlives its timeout fails with a message saying so.
pub async fn run(net: Arc<dyn Network>, order: ProbeOrder) -> ProbeResult {
    let judged = tokio::time::timeout(order.timeout, probe(&net, &order.kind)).await;
    let (outcome, output) = judged.unwrap_or_else(|_| timed_out(&order));
    ProbeResult { check: order.check, generation: order.generation, outcome, output }
}

async fn probe(net: &Arc<dyn Network>, kind: &CheckKind) -> (Outcome, String) {
    match kind {
        CheckKind::Http(c) => http::probe(net, c).await,
        CheckKind::Tcp(c) => tcp::probe(net, c).await,
        CheckKind::Grpc(c) => grpc::probe(net, c).await,
        // Never ordered: a TTL check has no probe.
        CheckKind::Ttl(_) => (Outcome::Fail, "a TTL check is not probed".into()),
    }
}

fn timed_out(order: &ProbeOrder) -> (Outcome, String) {
    let error = format!("timed out after {}", format_duration(order.timeout));
    match &order.kind {
        CheckKind::Http(c) => c.judge_error(&error),
        CheckKind::Tcp(c) => c.judge(Err(&error)),
        CheckKind::Grpc(c) => c.judge(Err(&error)),
        CheckKind::Ttl(_) => (Outcome::Fail, error),
    }
}
