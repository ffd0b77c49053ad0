//! The report of a finished run, as text for people or as one JSON object for scripts (`bench/compare`
//! reads `ops_per_s`, `latency_ms.p50`/`p99` and `errors`).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::args::{Plan, Workload};
use super::schedule::Budget;
use super::stats::Stats;

/// A finished run: what was asked and what was measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plan that ran.
    pub plan: Plan,
    /// Wall time from the first operation to the last result.
    pub elapsed: Duration,
    /// Merged measurements of every client.
    pub stats: Stats,
}

/// Latency summary of `hist` in milliseconds; all zeros when empty.
pub fn latency_ms(hist: &Histogram<u64>) -> Value {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if hist.is_empty() {
        return json!({"min": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0});
    }
    json!({
        "min": ms(hist.min()),
        "mean": hist.mean() / 1000.0,
        "p50": ms(hist.value_at_quantile(0.5)),
        "p90": ms(hist.value_at_quantile(0.9)),
        "p99": ms(hist.value_at_quantile(0.99)),
        "p999": ms(hist.value_at_quantile(0.999)),
        "max": ms(hist.max()),
    })
}

impl Report {
    /// Completed operations per second (0 for an empty run).
    pub fn ops_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.stats.ops() as f64 / secs } else { 0.0 }
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> Value {
        let p = &self.plan;
        let s = &self.stats;
        let (total, duration_s) = match p.budget {
            Budget::Total(n) => (Some(n), None),
            Budget::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        let mut out = json!({
            "workload": p.label(),
            "endpoints": p.endpoints,
            "clients": p.clients,
            "conns": p.conns,
            "protocol": p.protocol.name(),
            "threads": p.threads,
            "total": total,
            "duration_s": duration_s,
            "rate": p.rate,
            "key_size": p.keys.size,
            "val_size": p.val_size,
            "key_space": p.keys.space,
            "ops": s.ops(),
            "errors": s.errors.total(),
            "error_kinds": s.errors.by_count().into_iter()
                .map(|(kind, count)| json!({"kind": kind, "count": count}))
                .collect::<Vec<_>>(),
            "answered_by_endpoint": p.endpoints.iter().enumerate()
                .map(|(i, e)| json!({"endpoint": e, "ops": s.answered_by.get(&i).copied().unwrap_or(0)}))
                .collect::<Vec<_>>(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_s": self.ops_per_s(),
            "latency_ms": latency_ms(&s.latency),
        });
        let map = out.as_object_mut().expect("a JSON object");
        if p.workload == Workload::Mixed {
            map.insert("read_ratio".into(), json!(p.read_ratio));
        }
        for (name, hist) in [("reads", &s.reads), ("writes", &s.writes)] {
            if !hist.is_empty() {
                map.insert(name.into(), json!({"ops": hist.len(), "latency_ms": latency_ms(hist)}));
            }
        }
        if p.workload == Workload::Txn {
            map.insert("txn".into(), json!({"succeeded": s.txn_succeeded, "conflicts": s.txn_conflicts}));
        }
        out
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let p = &self.plan;
        let s = &self.stats;
        let mut out = format!(
            "{} protocol={} clients={} conns={} threads={} endpoints={} ops={} errors={} elapsed={:.2}s\n  throughput   {:.0} ops/s\n",
            p.label(),
            p.protocol.name(),
            p.clients,
            p.conns,
            p.threads,
            p.endpoints.len(),
            s.ops(),
            s.errors.total(),
            self.elapsed.as_secs_f64(),
            self.ops_per_s(),
        );
        let what = if p.workload == Workload::WatchLatency { "put sent → event" } else { "latency" };
        let _ = writeln!(out, "  {what:<12} {}", line(&s.latency));
        if p.workload == Workload::Mixed {
            let _ = writeln!(out, "  reads        n={} {}", s.reads.len(), line(&s.reads));
            let _ = writeln!(out, "  writes       n={} {}", s.writes.len(), line(&s.writes));
        }
        if p.workload == Workload::WatchLatency {
            let _ = writeln!(out, "  put acks     {}", line(&s.writes));
        }
        if p.workload == Workload::Txn {
            let _ = writeln!(out, "  txn          succeeded {}  conflicts {}", s.txn_succeeded, s.txn_conflicts);
        }
        for (kind, n) in s.errors.by_count() {
            let _ = writeln!(out, "  error        {n} × {kind}");
        }
        out.trim_end().to_owned()
    }
}

fn line(hist: &Histogram<u64>) -> String {
    let l = latency_ms(hist);
    let f = |k: &str| l[k].as_f64().unwrap_or_default();
    format!(
        "ms: min {:.3} p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        f("min"),
        f("p50"),
        f("p90"),
        f("p99"),
        f("p999"),
        f("max")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::{Consistency, Protocol};
    use crate::bench::keys::{KeyOrder, KeySpec};
    use crate::bench::stats::OpClass;

    fn plan(workload: Workload) -> Plan {
        Plan {
            workload,
            endpoints: vec!["http://127.0.0.1:2379".into()],
            clients: 4,
            conns: 2,
            protocol: Protocol::Grpc,
            threads: 1,
            budget: Budget::Total(4),
            rate: 0,
            keys: KeySpec { size: 8, order: KeyOrder::Seq, space: 0 },
            val_size: 256,
            consistency: Consistency::S,
            read_ratio: 0.0,
            timeout: Duration::from_secs(1),
            rounds: 0,
            wait: Duration::from_secs(60),
            json: true,
            tls: None,
            user: None,
        }
    }

    #[test]
    fn json_has_the_keys_compare_reads_and_ordered_quantiles() {
        let mut stats = Stats::default();
        for micros in [1000, 2000, 3000, 40_000] {
            stats.record(OpClass::Read, micros);
        }
        stats.error("Unavailable: etcdserver: no leader");
        let r = Report { plan: plan(Workload::Range), elapsed: Duration::from_secs(2), stats };
        let j = r.to_json();
        assert_eq!(j["workload"], "range-s");
        assert_eq!(j["ops"], 4);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["error_kinds"][0]["kind"], "Unavailable: etcdserver: no leader");
        assert_eq!(j["ops_per_s"], 2.0);
        assert_eq!(j["total"], 4);
        let l = &j["latency_ms"];
        let q = |k: &str| l[k].as_f64().unwrap();
        assert_eq!(q("min"), 1.0);
        assert!(q("min") <= q("p50") && q("p50") <= q("p90") && q("p90") <= q("p99"));
        assert!(q("p99") <= q("p999") && q("p999") <= q("max"));
        assert!((q("max") - 40.0).abs() < 0.1);
        assert_eq!(j["reads"]["ops"], 4);
        assert!(j.get("txn").is_none());
    }

    #[test]
    fn txn_reports_outcomes_and_an_empty_run_has_no_nan() {
        let mut stats = Stats::default();
        stats.record(OpClass::TxnSucceeded, 10);
        stats.record(OpClass::TxnConflict, 10);
        let r = Report { plan: plan(Workload::Txn), elapsed: Duration::ZERO, stats };
        let j = r.to_json();
        assert_eq!(j["txn"]["succeeded"], 1);
        assert_eq!(j["txn"]["conflicts"], 1);
        assert_eq!(j["ops_per_s"], 0.0);
        let empty = Report { plan: plan(Workload::Put), elapsed: Duration::from_secs(1), stats: Stats::default() };
        assert_eq!(empty.to_json()["latency_ms"]["p99"], 0.0);
        assert!(r.to_text().contains("succeeded 1  conflicts 1"));
    }
}
