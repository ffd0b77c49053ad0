//! `GET /metrics`: a few gauges in the Prometheus text exposition format (version 0.0.4), written by hand
//! because a handful of lines do not justify a metrics crate.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;
use super::status::StatusReport;
use crate::check_runner::Stats;

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the gauges of `report`.
pub fn render(report: &StatusReport, fault_injection: bool) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge("meridian_raft_term", "Current Raft term.", report.term.to_string());
    gauge(
        "meridian_raft_last_log_index",
        "Index of the last entry in the local Raft log.",
        report.last_log_index.to_string(),
    );
    gauge("meridian_raft_committed_index", "Highest Raft log index known committed.", report.committed.to_string());
    gauge("meridian_raft_applied_index", "Highest Raft log index applied to the store.", report.applied.to_string());
    gauge("meridian_mvcc_revision", "Current MVCC revision of the local store.", report.revision.to_string());
    gauge("meridian_is_leader", "1 if this member is the Raft leader.", u8::from(report.is_leader).to_string());
    gauge("meridian_has_leader", "1 if this member knows a leader.", u8::from(report.leader.is_some()).to_string());
    gauge("meridian_watchers", "Watchers open on this member.", report.watchers.to_string());
    gauge("meridian_db_size_bytes", "Size of this member's kv store file.", report.db_size.to_string());
    if let Some(free) = report.free_disk {
        gauge("meridian_disk_free_bytes", "Bytes free on the file system of the data dir.", free.to_string());
    }
    gauge(
        "meridian_alarms_active",
        "Alarms active in the cluster (NOSPACE, CORRUPT).",
        report.alarms.len().to_string(),
    );
    gauge(
        "meridian_fault_injection_enabled",
        "1 if the fault-injection endpoints are on.",
        u8::from(fault_injection).to_string(),
    );
    if !report.certificates.is_empty() {
        let _ =
            writeln!(out, "# HELP meridian_cert_expiry_seconds End of validity of a TLS certificate, Unix seconds.");
        let _ = writeln!(out, "# TYPE meridian_cert_expiry_seconds gauge");
        for c in &report.certificates {
            let _ = writeln!(
                out,
                "meridian_cert_expiry_seconds{{file=\"{}\",role=\"{}\"}} {}",
                escape(&c.file),
                escape(&c.role),
                c.not_after
            );
        }
    }
    if !report.verdicts.is_empty() {
        let _ = writeln!(
            out,
            "# HELP meridian_dc_state Datacenter verdict: 0 up, 1 degraded, 2 partitioned, 3 down (the state label names it)."
        );
        let _ = writeln!(out, "# TYPE meridian_dc_state gauge");
        for (dc, v) in &report.verdicts {
            let value = match v.state.as_str() {
                "up" => 0,
                "degraded" => 1,
                "partitioned" => 2,
                _ => 3,
            };
            let _ = writeln!(out, "meridian_dc_state{{dc=\"{}\",state=\"{}\"}} {value}", escape(dc), escape(&v.state));
        }
    }
    if !report.groups.is_empty() {
        let _ =
            writeln!(out, "# HELP meridian_failover_group_active 1 for the datacenter a failover group is active in.");
        let _ = writeln!(out, "# TYPE meridian_failover_group_active gauge");
        for (group, g) in &report.groups {
            let _ = writeln!(
                out,
                "meridian_failover_group_active{{group=\"{}\",dc=\"{}\"}} 1",
                escape(group),
                escape(&g.dc)
            );
        }
        let _ =
            writeln!(out, "# HELP meridian_failover_group_token Fencing token of a failover group's active record.");
        let _ = writeln!(out, "# TYPE meridian_failover_group_token gauge");
        for (group, g) in &report.groups {
            let _ = writeln!(out, "meridian_failover_group_token{{group=\"{}\"}} {}", escape(group), g.token);
        }
    }
    if !report.reachability.is_empty() {
        let _ = writeln!(out, "# HELP meridian_peer_reachable 1 if this member's probes reach the member.");
        let _ = writeln!(out, "# TYPE meridian_peer_reachable gauge");
        for r in &report.reachability {
            let _ = writeln!(
                out,
                "meridian_peer_reachable{{member=\"{}\",dc=\"{}\"}} {}",
                escape(&r.member),
                escape(&r.dc),
                u8::from(r.reachable)
            );
        }
        let _ = writeln!(out, "# HELP meridian_peer_rtt_ms Smoothed probe round trip to the member, milliseconds.");
        let _ = writeln!(out, "# TYPE meridian_peer_rtt_ms gauge");
        for r in report.reachability.iter().filter(|r| r.rtt_ms.is_some()) {
            let _ = writeln!(
                out,
                "meridian_peer_rtt_ms{{member=\"{}\",dc=\"{}\"}} {}",
                escape(&r.member),
                escape(&r.dc),
                r.rtt_ms.unwrap_or(0)
            );
        }
    }
    if report.is_leader {
        let _ = writeln!(out, "# HELP meridian_follower_lag_entries Log entries a member is behind the leader.");
        let _ = writeln!(out, "# TYPE meridian_follower_lag_entries gauge");
        for m in &report.members {
            if let Some(lag) = m.lag {
                let _ = writeln!(
                    out,
                    "meridian_follower_lag_entries{{member=\"{}\",dc=\"{}\"}} {lag}",
                    escape(&m.name),
                    escape(&m.dc)
                );
            }
        }
    }
    out
}

/// Escapes a label value as the exposition format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders the check runner's counters.
pub fn render_checks(stats: &Stats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: &AtomicU64| {
        let value = value.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric("meridian_checks_run", "gauge", "Health checks this member runs.", &stats.checks_run);
    metric("meridian_check_probes_total", "counter", "Health check probes started.", &stats.probes);
    metric("meridian_check_ttl_reports_total", "counter", "TTL reports fed to the checks run here.", &stats.reports);
    metric("meridian_check_publishes_total", "counter", "Batches of check states written.", &stats.publishes);
    metric(
        "meridian_check_changes_published_total",
        "counter",
        "Check state changes written through the log.",
        &stats.changes_published,
    );
    metric(
        "meridian_check_deregistrations_total",
        "counter",
        "Instances deregistered for staying critical.",
        &stats.deregistrations,
    );
    out
}

/// `GET /metrics`.
pub(super) async fn get_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let report = StatusReport::collect(&state);
    let mut text = render(&report, state.faults.is_some());
    if let Some(stats) = &state.check_stats {
        text.push_str(&render_checks(stats));
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn check_runner_counters_render_as_prometheus_text() {
        let stats = Stats::default();
        stats.probes.store(7, Ordering::Relaxed);
        let text = render_checks(&stats);
        assert!(text.contains("# TYPE meridian_check_probes_total counter\nmeridian_check_probes_total 7\n"), "{text}");
        assert!(text.contains("meridian_checks_run 0\n"), "{text}");
    }
}
