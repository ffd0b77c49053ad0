//! What clients measure: latency histograms (HDR, microseconds), errors counted by kind, and compare-and-set
//! outcomes. Each client keeps its own [`Stats`]; the runner merges them when the clients are done, so the
//! hot path never shares a lock.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Distinct error kinds kept by name; further kinds are counted together as [`OTHER_KINDS`].
pub const MAX_ERROR_KINDS: usize = 16;
/// The bucket for error kinds beyond [`MAX_ERROR_KINDS`].
pub const OTHER_KINDS: &str = "(other error kinds)";
/// Longest error message kept in a kind (longer ones are cut, so one kind stays one kind).
const MAX_KIND_LEN: usize = 160;
/// Largest latency a histogram resolves, in microseconds (larger values are recorded as this).
const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in microseconds, 1 µs to 10 min at 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds are valid")
}

/// The kind of an error as reports show it: the gRPC code and message, e.g. `Unavailable: etcdserver: no
/// leader`.
pub fn error_kind(status: &tonic::Status) -> String {
    let mut kind = format!("{:?}: {}", status.code(), status.message());
    if kind.len() > MAX_KIND_LEN {
        let mut cut = MAX_KIND_LEN;
        while !kind.is_char_boundary(cut) {
            cut -= 1;
        }
        kind.truncate(cut);
        kind.push('…');
    }
    kind
}

/// Error counts by kind, with at most [`MAX_ERROR_KINDS`] kinds named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    kinds: BTreeMap<String, u64>,
    other: u64,
}

impl ErrorCounts {
    /// Counts `n` errors of `kind`.
    pub fn add(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(count) = self.kinds.get_mut(kind) {
            *count += n;
        } else if self.kinds.len() < MAX_ERROR_KINDS {
            self.kinds.insert(kind.to_owned(), n);
        } else {
            self.other += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (kind, n) in &other.kinds {
            self.add(kind, *n);
        }
        self.other += other.other;
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.kinds.values().sum::<u64>() + self.other
    }

    /// Kinds with their counts, most frequent first (ties by name), the overflow bucket last.
    pub fn by_count(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self.kinds.iter().map(|(k, n)| (k.clone(), *n)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if self.other > 0 {
            out.push((OTHER_KINDS.to_owned(), self.other));
        }
        out
    }
}

/// The class of a completed operation, for the per-class histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// A range.
    Read,
    /// A put (in watch-latency: the put's own acknowledgement).
    Write,
    /// A compare-and-set whose Txn succeeded.
    TxnSucceeded,
    /// A compare-and-set whose compare failed (someone else changed the key first).
    TxnConflict,
    /// A watch event matched to the put that caused it (only the workload histogram).
    WatchEvent,
}

/// One client's (or, merged, the whole run's) measurements.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The workload's latency: one value per completed operation (watch-latency: put sent → event).
    pub latency: Histogram<u64>,
    /// Latency of the reads among the operations.
    pub reads: Histogram<u64>,
    /// Latency of the writes (watch-latency: put sent → put acknowledged).
    pub writes: Histogram<u64>,
    /// Failed operations by kind.
    pub errors: ErrorCounts,
    /// Compare-and-sets that wrote.
    pub txn_succeeded: u64,
    /// Compare-and-sets that found the key changed.
    pub txn_conflicts: u64,
    /// Requests answered successfully, by the index of the endpoint that answered them.
    pub answered_by: std::collections::BTreeMap<usize, u64>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            latency: histogram(),
            reads: histogram(),
            writes: histogram(),
            errors: ErrorCounts::default(),
            txn_succeeded: 0,
            txn_conflicts: 0,
            answered_by: std::collections::BTreeMap::new(),
        }
    }
}

impl Stats {
    /// Records a completed operation of `class` that took `micros`.
    pub fn record(&mut self, class: OpClass, micros: u64) {
        let micros = micros.clamp(1, MAX_MICROS);
        self.latency.saturating_record(micros);
        match class {
            OpClass::Read => self.reads.saturating_record(micros),
            OpClass::Write => self.writes.saturating_record(micros),
            OpClass::TxnSucceeded => self.txn_succeeded += 1,
            OpClass::TxnConflict => self.txn_conflicts += 1,
            OpClass::WatchEvent => {}
        }
    }

    /// Records a write in the per-class histogram only (watch-latency's put acknowledgements, which are not
    /// the measured operation).
    pub fn record_write_only(&mut self, micros: u64) {
        self.writes.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Counts a request the endpoint with index `endpoint` answered successfully.
    pub fn answered(&mut self, endpoint: usize) {
        *self.answered_by.entry(endpoint).or_default() += 1;
    }

    /// Records a failed operation.
    pub fn error(&mut self, kind: &str) {
        self.errors.add(kind, 1);
    }

    /// Completed operations.
    pub fn ops(&self) -> u64 {
        self.latency.len()
    }

    /// Adds everything `other` measured.
    pub fn merge(&mut self, other: &Stats) {
        // The histograms share bounds, so adding cannot fail.
        self.latency.add(&other.latency).expect("histograms share bounds");
        self.reads.add(&other.reads).expect("histograms share bounds");
        self.writes.add(&other.writes).expect("histograms share bounds");
        self.errors.merge(&other.errors);
        self.txn_succeeded += other.txn_succeeded;
        self.txn_conflicts += other.txn_conflicts;
        for (endpoint, n) in &other.answered_by {
            *self.answered_by.entry(*endpoint).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut a = Stats::default();
        a.record(OpClass::Read, 100);
        a.record(OpClass::TxnSucceeded, 300);
        a.error("Unavailable: etcdserver: no leader");
        let mut b = Stats::default();
        b.record(OpClass::Write, 5000);
        b.record(OpClass::TxnConflict, 200);
        b.record(OpClass::TxnConflict, 200);
        b.error("Unavailable: etcdserver: no leader");
        b.error("DeadlineExceeded: timeout");
        a.merge(&b);
        assert_eq!(a.ops(), 5);
        assert_eq!((a.reads.len(), a.writes.len()), (1, 1));
        assert_eq!((a.txn_succeeded, a.txn_conflicts), (1, 2));
        assert_eq!(a.errors.total(), 3);
        assert_eq!(
            a.errors.by_count(),
            vec![("Unavailable: etcdserver: no leader".to_owned(), 2), ("DeadlineExceeded: timeout".to_owned(), 1)]
        );
        assert_eq!(a.latency.min(), 100);
        assert!(a.latency.equivalent(a.latency.max(), 5000));
    }

    #[test]
    fn latencies_are_clamped_into_the_histogram() {
        let mut s = Stats::default();
        s.record(OpClass::Read, 0);
        s.record(OpClass::Read, u64::MAX);
        assert_eq!(s.ops(), 2);
        assert_eq!(s.latency.min(), 1);
        assert!(s.latency.max() >= MAX_MICROS);
        s.record_write_only(10);
        assert_eq!((s.ops(), s.writes.len()), (2, 1));
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut e = ErrorCounts::default();
        for i in 0..MAX_ERROR_KINDS + 5 {
            e.add(&format!("Unknown: kind {i:02}"), 1);
        }
        e.add("Unknown: kind 00", 1);
        let kinds = e.by_count();
        assert_eq!(kinds.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(kinds[0], ("Unknown: kind 00".to_owned(), 2));
        assert_eq!(kinds.last().unwrap(), &(OTHER_KINDS.to_owned(), 5));
        assert_eq!(e.total(), MAX_ERROR_KINDS as u64 + 6);
        // Merging keeps the bound and the overflow.
        let mut m = ErrorCounts::default();
        m.add("Internal: x", 1);
        m.merge(&e);
        assert_eq!(m.by_count().len(), MAX_ERROR_KINDS + 1);
        assert_eq!(m.total(), e.total() + 1);
    }

    #[test]
    fn error_kinds_name_code_and_message_and_are_cut_when_long() {
        let s = tonic::Status::unavailable("etcdserver: no leader");
        assert_eq!(error_kind(&s), "Unavailable: etcdserver: no leader");
        let long = tonic::Status::internal("é".repeat(500));
        let kind = error_kind(&long);
        assert!(kind.len() <= MAX_KIND_LEN + '…'.len_utf8());
        assert!(kind.starts_with("Internal: é"));
    }
}
