//! What `blocking-wake` measures and reports: per round, when each parked blocking query returned with a larger
//! index, as offsets from the registration's acknowledgement and from its send (signed: a query on the member
//! that took the write may return before the write is acknowledged), summed up as first, median, p99 and last;
//! and the pooled summary of every round. Pure: the runner hands in instants, this turns them into numbers.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use super::stats::ErrorCounts;

/// Signed microseconds from `from` to `to`.
pub fn offset_micros(from: Instant, to: Instant) -> i64 {
    match to.checked_duration_since(from) {
        Some(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        None => -i64::try_from(from.duration_since(to).as_micros()).unwrap_or(i64::MAX),
    }
}

/// First, median, p99 and last of a set of offsets, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    /// The earliest.
    pub first: i64,
    /// The median (nearest rank).
    pub p50: i64,
    /// The 99th percentile (nearest rank).
    pub p99: i64,
    /// The latest: when the change had reached every woken query.
    pub last: i64,
}

impl Spread {
    /// The spread of `offsets`; `None` when there are none.
    pub fn of(offsets: &[i64]) -> Option<Spread> {
        let mut sorted = offsets.to_vec();
        sorted.sort_unstable();
        Some(Spread {
            first: *sorted.first()?,
            p50: nearest_rank(&sorted, 0.5),
            p99: nearest_rank(&sorted, 0.99),
            last: *sorted.last()?,
        })
    }

    fn to_json(self) -> Value {
        let ms = |us: i64| us as f64 / 1000.0;
        json!({"first": ms(self.first), "p50": ms(self.p50), "p99": ms(self.p99), "last": ms(self.last)})
    }

    fn line(self) -> String {
        let ms = |us: i64| us as f64 / 1000.0;
        format!(
            "ms: first {:.3} p50 {:.3} p99 {:.3} last {:.3}",
            ms(self.first),
            ms(self.p50),
            ms(self.p99),
            ms(self.last)
        )
    }
}

/// The value at quantile `q` of `sorted` (not empty) by the nearest-rank method: the smallest value with at
/// least `q` of the values at or below it.
pub fn nearest_rank(sorted: &[i64], q: f64) -> i64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One round: the change's timing and when each parked query returned.
#[derive(Clone, Debug, Default)]
pub struct Round {
    /// The registration's round trip (send → acknowledgement), microseconds.
    pub ack_micros: i64,
    /// Per woken query: offset from the acknowledgement, microseconds.
    pub from_ack: Vec<i64>,
    /// Per woken query: offset from the send, microseconds.
    pub from_send: Vec<i64>,
    /// Queries that returned without a larger index (their wait ran out) or before the change was sent.
    pub missed: u64,
    /// Queries that failed (connection, status, timeout), by kind.
    pub errors: ErrorCounts,
}

impl Round {
    /// Records a query that returned at `returned` with a larger index, for a change sent at `sent` and
    /// acknowledged at `acked`. One that returned before `sent` did not wait for this change: missed.
    pub fn woken(&mut self, sent: Instant, acked: Instant, returned: Instant) {
        if returned < sent {
            self.missed += 1;
        } else {
            self.from_ack.push(offset_micros(acked, returned));
            self.from_send.push(offset_micros(sent, returned));
        }
    }
}

/// A finished `blocking-wake` run.
#[derive(Clone, Debug)]
pub struct WakeReport {
    /// Parked queries per round.
    pub clients: usize,
    /// Endpoints, the registrations going to the first.
    pub endpoints: Vec<String>,
    /// Every round, in order.
    pub rounds: Vec<Round>,
}

impl WakeReport {
    fn pooled(&self, pick: impl Fn(&Round) -> &Vec<i64>) -> Option<Spread> {
        let all: Vec<i64> = self.rounds.iter().flat_map(|r| pick(r).iter().copied()).collect();
        Spread::of(&all)
    }

    fn errors(&self) -> ErrorCounts {
        let mut e = ErrorCounts::default();
        for r in &self.rounds {
            e.merge(&r.errors);
        }
        e
    }

    /// The median over rounds of the time until the last query woke, from the acknowledgement.
    pub fn median_last_from_ack(&self) -> Option<i64> {
        let mut lasts: Vec<i64> = self.rounds.iter().filter_map(|r| Spread::of(&r.from_ack)).map(|s| s.last).collect();
        lasts.sort_unstable();
        (!lasts.is_empty()).then(|| nearest_rank(&lasts, 0.5))
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> Value {
        let spread = |s: Option<Spread>| s.map_or(Value::Null, Spread::to_json);
        let errors = self.errors();
        json!({
            "workload": "blocking-wake",
            "protocol": "consul",
            "endpoints": self.endpoints,
            "clients": self.clients,
            "rounds": self.rounds.len(),
            "woken": self.rounds.iter().map(|r| r.from_ack.len()).sum::<usize>(),
            "missed": self.rounds.iter().map(|r| r.missed).sum::<u64>(),
            "errors": errors.total(),
            "error_kinds": errors.by_count().into_iter()
                .map(|(kind, count)| json!({"kind": kind, "count": count}))
                .collect::<Vec<_>>(),
            "from_ack_ms": spread(self.pooled(|r| &r.from_ack)),
            "from_send_ms": spread(self.pooled(|r| &r.from_send)),
            "median_round_last_from_ack_ms": self.median_last_from_ack().map(|us| us as f64 / 1000.0),
            "per_round": self.rounds.iter().map(|r| json!({
                "ack_ms": r.ack_micros as f64 / 1000.0,
                "woken": r.from_ack.len(),
                "missed": r.missed,
                "errors": r.errors.total(),
                "from_ack_ms": spread(Spread::of(&r.from_ack)),
                "from_send_ms": spread(Spread::of(&r.from_send)),
            })).collect::<Vec<_>>(),
        })
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let errors = self.errors();
        let mut out = format!(
            "blocking-wake clients={} endpoints={} rounds={} errors={}\n",
            self.clients,
            self.endpoints.len(),
            self.rounds.len(),
            errors.total()
        );
        let none = || "no query woke".to_owned();
        for (i, r) in self.rounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "  round {i}: ack {:.3} ms, woken {}/{}, missed {}, errors {}\n    from ack   {}\n    from send  {}",
                r.ack_micros as f64 / 1000.0,
                r.from_ack.len(),
                self.clients,
                r.missed,
                r.errors.total(),
                Spread::of(&r.from_ack).map_or_else(none, Spread::line),
                Spread::of(&r.from_send).map_or_else(none, Spread::line),
            );
        }
        let _ =
            writeln!(out, "  all rounds, from ack   {}", self.pooled(|r| &r.from_ack).map_or_else(none, Spread::line));
        let _ =
            writeln!(out, "  all rounds, from send  {}", self.pooled(|r| &r.from_send).map_or_else(none, Spread::line));
        for (kind, n) in errors.by_count() {
            let _ = writeln!(out, "  error        {n} × {kind}");
        }
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn offsets_are_signed() {
        let t = Instant::now();
        let later = t + Duration::from_micros(1500);
        assert_eq!(offset_micros(t, later), 1500);
        assert_eq!(offset_micros(later, t), -1500);
        assert_eq!(offset_micros(t, t), 0);
    }

    #[test]
    fn spreads_use_nearest_rank() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[7]), Some(Spread { first: 7, p50: 7, p99: 7, last: 7 }));
        let values: Vec<i64> = (1..=1000).rev().collect();
        assert_eq!(Spread::of(&values), Some(Spread { first: 1, p50: 500, p99: 990, last: 1000 }));
        assert_eq!(Spread::of(&[-3, 10, 4]), Some(Spread { first: -3, p50: 4, p99: 10, last: 10 }));
        assert_eq!(nearest_rank(&[1, 2], 0.0), 1);
        assert_eq!(nearest_rank(&[1, 2], 1.0), 2);
    }

    #[test]
    fn a_round_counts_wakes_from_ack_and_send_and_early_returns_as_missed() {
        let sent = Instant::now();
        let acked = sent + Duration::from_millis(4);
        let mut r = Round::default();
        r.woken(sent, acked, sent + Duration::from_millis(3));
        r.woken(sent, acked, sent + Duration::from_millis(10));
        r.woken(sent + Duration::from_millis(1), acked, sent);
        assert_eq!(r.from_ack, vec![-1000, 6000]);
        assert_eq!(r.from_send, vec![3000, 10_000]);
        assert_eq!(r.missed, 1);
        let report =
            WakeReport { clients: 3, endpoints: vec!["http://127.0.0.1:8500".into()], rounds: vec![r.clone(), r] };
        let j = report.to_json();
        assert_eq!(j["woken"], 4);
        assert_eq!(j["missed"], 2);
        assert_eq!(j["from_ack_ms"]["first"], -1.0);
        assert_eq!(j["from_ack_ms"]["last"], 6.0);
        assert_eq!(j["from_send_ms"]["p50"], 3.0);
        assert_eq!(j["median_round_last_from_ack_ms"], 6.0);
        assert_eq!(j["per_round"][1]["woken"], 2);
        assert!(report.to_text().contains("woken 2/3, missed 1"));
        let empty = WakeReport { clients: 1, endpoints: vec![], rounds: vec![Round::default()] };
        assert_eq!(empty.to_json()["from_ack_ms"], Value::Null);
        assert!(empty.to_text().contains("no query woke"));
    }
}
