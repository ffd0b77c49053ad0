//! Discovery's answers against the committed registry (issue 26's simulation check).
//!
//! Ground truth is the registry as the store committed it ([`DiscoveryRecord::truth`]): rebuilt at every revision,
//! an instance's aggregate health there is the worst of its checks' committed records (a check without a record
//! counts as its initial status). For each recorded answer at catalog index `I`:
//! - **(a) never critical**: every answered instance was registered at `I`, was not critical there, and was
//!   passing when the query counted only passing instances;
//! - **(b) complete and ordered**: the answer is exactly what `meridian_registry::rank` gives from the
//!   registry at `I` with the answer's own inputs (locality, round-trip times, `down` verdicts, threshold,
//!   warning choice, seed);
//! - answers at revisions the truth does not cover (between two segments, after a compaction the sampler could
//!   not read through) are not judged, and counted.
//!
//! Since the catalog reflects exactly the store at its index, (a) is also "answers follow failures": once a fail
//! report is committed at `R`, every answer at an index at or after `R` leaves the instance out until a pass is
//! committed. What remains is how long a member takes to get there, **bounded staleness**: for each acknowledged
//! write whose revision `R` is known (a registration answers it; a report is found in the truth by its unique
//! note), every founder that was up and clear of faults from a while before the acknowledgement
//! ([`DiscoveryRecord::settle_ms`]) to a window after it ([`DiscoveryRecord::window_ms`]) must show a catalog index
//! of at least `R` within the window, and an answer such a founder gives past the window must not be at an index
//! below `R`. The lag is measured for the report.
//!
//! Also: an acknowledged registration or report must be in the committed registry (checked when the truth is
//! one unbroken segment).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use meridian_registry::keys::{SERVICES_PREFIX, check_key};
use meridian_registry::{
    Candidate, CheckRecord, Instance, InstanceRef, Locality, Query, Registration, ServicePolicy, Status, aggregate,
    rank,
};
use meridian_types::{DcName, ZoneName};

use crate::discovery_record::{
    DiscoveryAnswer, DiscoveryRecord, RegistryCall, RegistryWrite, TruthSegment, WriteOutcome,
};
use crate::history::History;

/// A broken discovery invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryViolation {
    /// An answer named an instance that was not registered at its index.
    NotRegistered {
        /// The member that answered.
        member: String,
        /// When.
        at: u64,
        /// The answer's catalog index.
        index: i64,
        /// The instance.
        instance: String,
    },
    /// An answer named an instance whose committed health at its index was critical (or warning, for a
    /// passing-only answer).
    Unhealthy {
        /// The member that answered.
        member: String,
        /// When.
        at: u64,
        /// The answer's catalog index.
        index: i64,
        /// The instance.
        instance: String,
        /// Its committed health at the index.
        health: Status,
        /// The revision of its last check record at or before the index (0: none, the initial status).
        since: i64,
        /// Whether the query counted warning instances.
        include_warning: bool,
    },
    /// The answer is not the ranking of the committed registry at its index.
    NotTheRanking {
        /// The member that answered.
        member: String,
        /// When.
        at: u64,
        /// The service.
        service: String,
        /// The answer's catalog index.
        index: i64,
        /// What the ranking gives.
        expected: Vec<String>,
        /// What the member answered.
        got: Vec<String>,
    },
    /// An acknowledged write is not in the committed registry.
    LostWrite {
        /// The write's id.
        write: u64,
        /// What it was.
        what: String,
    },
    /// A founder clear of faults did not show an acknowledged write in its catalog within the window.
    StaleCatalog {
        /// The member.
        member: String,
        /// The write's revision.
        revision: i64,
        /// When it was acknowledged.
        acked_at: u64,
        /// When the member's catalog reached it (`None`: not while sampled).
        reached_at: Option<u64>,
        /// The window, in milliseconds.
        window_ms: u64,
    },
    /// A founder clear of faults answered, past the window, from a catalog older than an acknowledged write.
    StaleAnswer {
        /// The member.
        member: String,
        /// When it answered.
        at: u64,
        /// The answer's index.
        index: i64,
        /// The acknowledged write's revision.
        revision: i64,
        /// When that write was acknowledged.
        acked_at: u64,
    },
}

impl fmt::Display for DiscoveryViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns / 1_000_000;
        match self {
            DiscoveryViolation::NotRegistered { member, at, index, instance } => write!(
                f,
                "{member} at {}ms answered {instance}, which was not registered at the answer's revision {index}",
                ms(*at)
            ),
            DiscoveryViolation::Unhealthy { member, at, index, instance, health, since, include_warning } => write!(
                f,
                "{member} at {}ms answered {instance}, whose committed health at the answer's revision {index} was \
                 {health} (its check record of revision {since}){}",
                ms(*at),
                if *include_warning { "" } else { " in a passing-only answer" }
            ),
            DiscoveryViolation::NotTheRanking { member, at, service, index, expected, got } => write!(
                f,
                "{member} at {}ms answered {service} at revision {index} with [{}], but the committed registry there \
                 ranks [{}]",
                ms(*at),
                got.join(", "),
                expected.join(", ")
            ),
            DiscoveryViolation::LostWrite { write, what } => {
                write!(f, "acknowledged registry write {write} ({what}) is not in the committed registry")
            }
            DiscoveryViolation::StaleCatalog { member, revision, acked_at, reached_at, window_ms } => write!(
                f,
                "{member}'s catalog reached revision {revision}, acknowledged at {}ms, {}: beyond the {window_ms}ms \
                 window, while clear of faults",
                ms(*acked_at),
                match reached_at {
                    Some(t) => format!("only at {}ms", ms(*t)),
                    None => "never".to_owned(),
                }
            ),
            DiscoveryViolation::StaleAnswer { member, at, index, revision, acked_at } => write!(
                f,
                "{member} at {}ms answered from revision {index}, although revision {revision} was acknowledged at \
                 {}ms, more than a window before, with no fault since",
                ms(*at),
                ms(*acked_at)
            ),
        }
    }
}

/// What the discovery check measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Answers recorded.
    pub answers: usize,
    /// Answers judged against the committed registry.
    pub judged: usize,
    /// Answers in revisions the truth does not cover.
    pub unjudged: usize,
    /// Judged answers that named at least one instance.
    pub nonempty: usize,
    /// (write, founder) pairs whose catalog lag was measured.
    pub lags_measured: usize,
    /// The median lag, in milliseconds.
    pub lag_p50_ms: u64,
    /// The 99th percentile lag, in milliseconds.
    pub lag_p99_ms: u64,
    /// The largest lag, in milliseconds.
    pub lag_max_ms: u64,
}

/// Runs the discovery checks on `history` (nothing to check without a discovery record).
pub fn check(history: &History) -> (Vec<DiscoveryViolation>, DiscoveryStats) {
    let Some(record) = &history.discovery else { return (Vec::new(), DiscoveryStats::default()) };
    let mut out = Vec::new();
    let mut stats = DiscoveryStats { answers: record.answers.len(), ..DiscoveryStats::default() };
    judge_answers(record, &mut out, &mut stats);
    let acked = acknowledged(record, &mut out);
    staleness(record, &acked, &mut out, &mut stats);
    (out, stats)
}

/// The committed registry at one revision: key → (value, revision written).
#[derive(Clone, Debug, Default)]
struct State {
    keys: BTreeMap<String, (String, i64)>,
}

impl State {
    fn of(segment: &TruthSegment) -> State {
        let keys = segment.base.iter().map(|kv| (kv.key.clone(), (kv.value.clone(), segment.from))).collect();
        State { keys }
    }

    /// Every registered instance of `service` with its aggregate health and the revision of its newest check
    /// record.
    fn service(&self, service: &str) -> Vec<(Instance, Status, i64)> {
        let prefix = format!("{SERVICES_PREFIX}{service}/");
        let mut out = Vec::new();
        for (key, (value, _)) in self.keys.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            let Ok(reg) = Registration::decode(key, value.as_bytes()) else { continue };
            let mut since = 0;
            let statuses: Vec<Status> = reg
                .checks
                .iter()
                .map(|def| {
                    let ck = check_key(&reg.check_ref(&def.id));
                    match self
                        .keys
                        .get(&ck)
                        .and_then(|(v, rev)| Some((CheckRecord::decode(&ck, v.as_bytes()).ok()?, rev)))
                    {
                        Some((record, rev)) => {
                            since = since.max(*rev);
                            record.status
                        }
                        None => def.initial,
                    }
                })
                .collect();
            out.push((reg.instance, aggregate(statuses), since));
        }
        out
    }
}

fn names(list: &[(InstanceRef, Status)]) -> Vec<String> {
    list.iter().map(|(r, s)| format!("{r} ({s})")).collect()
}

/// (a) and (b) for every answer whose index a truth segment covers.
fn judge_answers(record: &DiscoveryRecord, out: &mut Vec<DiscoveryViolation>, stats: &mut DiscoveryStats) {
    let mut order: Vec<&DiscoveryAnswer> = record.answers.iter().collect();
    order.sort_by_key(|a| a.index);
    let mut judged = vec![false; order.len()];
    for segment in &record.truth {
        let mut state = State::of(segment);
        let mut events = segment.events.iter().peekable();
        for (n, answer) in order.iter().enumerate() {
            if answer.index < segment.from || answer.index > segment.to || judged[n] {
                continue;
            }
            while let Some(e) = events.next_if(|e| e.revision <= answer.index) {
                match &e.value {
                    Some(v) => state.keys.insert(e.key.clone(), (v.clone(), e.revision)),
                    None => state.keys.remove(&e.key),
                };
            }
            judged[n] = true;
            stats.judged += 1;
            if !answer.instances.is_empty() {
                stats.nonempty += 1;
            }
            judge(answer, &state, out);
        }
    }
    stats.unjudged = judged.iter().filter(|j| !**j).count();
}

fn judge(answer: &DiscoveryAnswer, state: &State, out: &mut Vec<DiscoveryViolation>) {
    let instances = state.service(&answer.service);
    let (member, at, index) = (answer.member.clone(), answer.at, answer.index);
    let mut named = false;
    for (r, _) in &answer.instances {
        let Some((_, health, since)) = instances.iter().find(|(i, _, _)| i.reference() == *r) else {
            out.push(DiscoveryViolation::NotRegistered { member: member.clone(), at, index, instance: r.to_string() });
            named = true;
            continue;
        };
        let allowed = if answer.include_warning { Status::Warning } else { Status::Passing };
        if *health > allowed {
            out.push(DiscoveryViolation::Unhealthy {
                member: member.clone(),
                at,
                index,
                instance: r.to_string(),
                health: *health,
                since: *since,
                include_warning: answer.include_warning,
            });
            named = true;
        }
    }
    if named {
        return;
    }
    let expected = ranking(answer, &instances);
    if expected != answer.instances {
        out.push(DiscoveryViolation::NotTheRanking {
            member,
            at,
            service: answer.service.clone(),
            index,
            expected: names(&expected),
            got: names(&answer.instances),
        });
    }
}

/// What `meridian_registry::rank` answers from `instances` with the answer's inputs.
fn ranking(answer: &DiscoveryAnswer, instances: &[(Instance, Status, i64)]) -> Vec<(InstanceRef, Status)> {
    let from = Locality { dc: DcName(answer.dc.clone()), zone: answer.zone.clone().map(ZoneName) };
    let rtt_ms: BTreeMap<DcName, u64> = answer.rtt_ms.iter().map(|(dc, ms)| (DcName(dc.clone()), *ms)).collect();
    let down: BTreeSet<DcName> = answer.down.iter().map(|dc| DcName(dc.clone())).collect();
    let candidates: Vec<Candidate<'_>> =
        instances.iter().map(|(instance, health, _)| Candidate { instance, health: *health }).collect();
    let query = Query {
        from: &from,
        rtt_ms: &rtt_ms,
        down: &down,
        policy: ServicePolicy { failover_threshold: answer.threshold },
        include_warning: answer.include_warning,
        tags: &[],
        seed: answer.seed,
    };
    rank(&candidates, &query).answer().iter().map(|e| (e.instance.reference(), e.health)).collect()
}

/// An acknowledged write with its committed revision: (ack time, revision).
type Acked = (u64, i64);

/// The acknowledged writes whose revision is known; reports lost from the truth are violations.
fn acknowledged(record: &DiscoveryRecord, out: &mut Vec<DiscoveryViolation>) -> Vec<Acked> {
    // Every check record the truth shows, by its (unique) note: the revision that wrote it.
    let mut notes: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut puts: BTreeSet<(String, i64)> = BTreeSet::new();
    for segment in &record.truth {
        let all = segment
            .base
            .iter()
            .map(|kv| (kv.key.as_str(), Some(kv.value.as_str()), segment.from))
            .chain(segment.events.iter().map(|e| (e.key.as_str(), e.value.as_deref(), e.revision)));
        for (key, value, revision) in all {
            let Some(value) = value else { continue };
            puts.insert((key.to_owned(), revision));
            if let Ok(r) = CheckRecord::decode(key, value.as_bytes()) {
                notes.entry((key.to_owned(), r.output)).or_insert(revision);
            }
        }
    }
    let whole = record.truth.len() == 1 && record.truth[0].from == 0;
    let final_status = final_statuses(record);
    let mut acked = Vec::new();
    for w in &record.writes {
        let (WriteOutcome::Ok { revision }, Some(done)) = (&w.outcome, w.complete) else { continue };
        let found = match &w.call {
            RegistryCall::Register { instance, .. } => {
                let key = meridian_registry::keys::instance_key(instance);
                let rev = revision.unwrap_or(0);
                let covered = record.truth.iter().any(|s| rev > s.from && rev <= s.to);
                if covered && !puts.contains(&(key, rev)) {
                    out.push(DiscoveryViolation::LostWrite {
                        write: w.id,
                        what: format!("registration of {instance} at revision {rev}"),
                    });
                }
                revision.filter(|_| covered)
            }
            RegistryCall::Report { check, output, status } => {
                let key = check_key(check);
                let rev = notes.get(&(key.clone(), output.clone())).copied();
                // The check's runner publishes status changes only, batched: a report that changed nothing, or
                // whose change a later one undid within a batch, leaves no record of its own. Such a report is
                // lost only if it was the last word on its check, the run went on for a window after it, and the
                // check did not end in the reported status.
                let last_word = !superseded(record, w, &check.instance);
                let settled = done + record.window_ms * 1_000_000 <= record.sampled_until;
                if rev.is_none() && whole && last_word && settled && final_status.get(&key) != Some(status) {
                    out.push(DiscoveryViolation::LostWrite {
                        write: w.id,
                        what: format!(
                            "{status} report {output:?} on {check} (the check ended {:?})",
                            final_status.get(&key)
                        ),
                    });
                }
                rev
            }
            RegistryCall::Deregister { .. } => None,
        };
        if let Some(rev) = found {
            acked.push((done, rev));
        }
    }
    acked.sort_unstable();
    acked
}

/// Whether another write on `instance` (its registration, deregistration or a report on one of its checks) was
/// sent after `w` was, or was still unanswered when `w` was sent: its effect may have replaced `w`'s.
fn superseded(record: &DiscoveryRecord, w: &RegistryWrite, instance: &InstanceRef) -> bool {
    record.writes.iter().filter(|x| x.id != w.id).any(|x| {
        let on_instance = match &x.call {
            RegistryCall::Register { instance: i, .. } | RegistryCall::Deregister { instance: i } => i == instance,
            RegistryCall::Report { check, .. } => &check.instance == instance,
        };
        on_instance && (x.invoke >= w.invoke || x.complete.is_none_or(|c| c > w.invoke))
    })
}

/// The status of every check record in the last stretch of the truth, at its last revision.
fn final_statuses(record: &DiscoveryRecord) -> BTreeMap<String, Status> {
    let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
    if let Some(segment) = record.truth.last() {
        for kv in &segment.base {
            last.insert(kv.key.clone(), Some(kv.value.clone()));
        }
        for e in &segment.events {
            last.insert(e.key.clone(), e.value.clone());
        }
    }
    last.into_iter()
        .filter_map(|(key, value)| {
            let record = CheckRecord::decode(&key, value?.as_bytes()).ok()?;
            Some((key, record.status))
        })
        .collect()
}

/// A founder's catalog index over time.
#[derive(Default)]
struct Timeline {
    samples: Vec<(u64, Option<i64>)>,
}

impl Timeline {
    /// The index at `at` (the last sample at or before it).
    fn at(&self, at: u64) -> Option<i64> {
        let n = self.samples.partition_point(|(t, _)| *t <= at);
        if n == 0 { None } else { self.samples[n - 1].1 }
    }

    /// Whether the member was up throughout `[from, to]`.
    fn up_throughout(&self, from: u64, to: u64) -> bool {
        let n = self.samples.partition_point(|(t, _)| *t <= from);
        if n == 0 || self.samples[n - 1].1.is_none() {
            return false;
        }
        self.samples[n..].iter().take_while(|(t, _)| *t <= to).all(|(_, i)| i.is_some())
    }

    /// The first moment at or after `from` its index was at least `revision`.
    fn reached(&self, from: u64, revision: i64) -> Option<u64> {
        if self.at(from).is_some_and(|i| i >= revision) {
            return Some(from);
        }
        let n = self.samples.partition_point(|(t, _)| *t <= from);
        self.samples[n..].iter().find(|(_, i)| i.is_some_and(|i| i >= revision)).map(|(t, _)| *t)
    }
}

/// Bounded staleness of the founders' catalogs and answers.
fn staleness(record: &DiscoveryRecord, acked: &[Acked], out: &mut Vec<DiscoveryViolation>, stats: &mut DiscoveryStats) {
    let window = record.window_ms * 1_000_000;
    let mut timelines: BTreeMap<&str, Timeline> =
        record.founders.iter().map(|f| (f.as_str(), Timeline::default())).collect();
    for s in &record.catalog_samples {
        if let Some(t) = timelines.get_mut(s.member.as_str()) {
            t.samples.push((s.at, s.index));
        }
    }
    let faulty = |from: u64, to: u64| record.fault_spans.iter().any(|(a, b)| *a <= to && *b >= from);
    let clear = |t: &Timeline, from: u64, to: u64| !faulty(from, to) && t.up_throughout(from, to);
    let settle = record.settle_ms * 1_000_000;
    let mut lags = Vec::new();
    for &(acked_at, revision) in acked {
        // Judged while sampled: up to the window's end, or to the end of sampling if it came first.
        let (from, to) = (acked_at.saturating_sub(settle), (acked_at + window).min(record.sampled_until));
        if acked_at > record.sampled_until {
            continue;
        }
        for (member, timeline) in &timelines {
            if !clear(timeline, from, to) {
                continue;
            }
            let reached = timeline.reached(acked_at, revision).filter(|t| *t <= record.sampled_until);
            match reached {
                Some(t) if t <= acked_at + window => lags.push((t - acked_at) / 1_000_000),
                // Not there by the end of sampling, which came before the window's end: not judged.
                None if acked_at + window > record.sampled_until => {}
                _ => out.push(DiscoveryViolation::StaleCatalog {
                    member: (*member).to_owned(),
                    revision,
                    acked_at,
                    reached_at: reached,
                    window_ms: record.window_ms,
                }),
            }
        }
    }
    for answer in &record.answers {
        let Some(timeline) = timelines.get(answer.member.as_str()) else { continue };
        // The newest write acknowledged more than a window before the answer, with the member clear since a
        // window before it.
        let stale = acked
            .iter()
            .filter(|(t, rev)| t + window <= answer.at && *rev > answer.index)
            .filter(|(t, _)| clear(timeline, t.saturating_sub(settle), answer.at))
            .max_by_key(|(_, rev)| *rev);
        if let Some(&(acked_at, revision)) = stale {
            out.push(DiscoveryViolation::StaleAnswer {
                member: answer.member.clone(),
                at: answer.at,
                index: answer.index,
                revision,
                acked_at,
            });
        }
    }
    lags.sort_unstable();
    stats.lags_measured = lags.len();
    let pick = |q: f64| lags.get(((lags.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    stats.lag_p50_ms = pick(0.5);
    stats.lag_p99_ms = pick(0.99);
    stats.lag_max_ms = lags.last().copied().unwrap_or(0);
}
