//! The discovery checker on hand-built histories: a registry with two `web` instances in dc-a (zones a1-z and
//! a2-z) and one in dc-b, answers from member a1 (dc-a, zone a1-z).

use meridian_registry::keys::check_key;
use meridian_registry::{CheckId, CheckRecord, CheckRef, Instance, InstanceRef, Status, Timestamp};

use crate::checker::{self, CheckOptions, DiscoveryViolation};
use crate::discovery_record::{
    CatalogSample, DiscoveryAnswer, DiscoveryRecord, RegistryCall, RegistryWrite, TruthEvent, TruthSegment,
    WriteOutcome,
};
use crate::discovery_workload::{Site, instances, registration};
use crate::history::History;

const MS: u64 = 1_000_000;
const WINDOW_MS: u64 = 3000;

fn web() -> Vec<Instance> {
    let sites: Vec<Site> = [("a1", "dc-a"), ("a2", "dc-a"), ("b1", "dc-b")]
        .iter()
        .map(|(node, dc)| Site { node: (*node).to_owned(), dc: (*dc).to_owned(), zone: format!("{node}-z") })
        .collect();
    instances(&sites).into_iter().flatten().filter(|i| i.service.as_str() == "web").collect()
}

fn check_of(i: &Instance) -> CheckRef {
    CheckRef { instance: i.reference(), check: CheckId::new("ttl").unwrap() }
}

fn record(status: Status, output: &str) -> String {
    String::from_utf8(CheckRecord { status, output: output.to_owned(), since: Timestamp(1) }.encode()).unwrap()
}

fn event(revision: i64, key: String, value: String) -> TruthEvent {
    TruthEvent { revision, key, value: Some(value) }
}

/// Revision 2 registers all three instances passing; revision 3 fails a1's; revision 4 passes it again.
fn truth() -> TruthSegment {
    let mut events = Vec::new();
    for i in web() {
        let reg = registration(&i, Status::Passing);
        events.push(event(2, reg.key(), String::from_utf8(reg.encode()).unwrap()));
        events.push(event(2, check_key(&check_of(&i)), record(Status::Passing, "")));
    }
    events.push(event(3, check_key(&check_of(&web()[0])), record(Status::Critical, "c1-r1")));
    events.push(event(4, check_key(&check_of(&web()[0])), record(Status::Passing, "c1-r2")));
    TruthSegment { from: 0, base: Vec::new(), events, to: 10 }
}

fn answer(index: i64, at_ms: u64, instances: Vec<(InstanceRef, Status)>) -> DiscoveryAnswer {
    DiscoveryAnswer {
        client: 500,
        member: "a1".to_owned(),
        at: at_ms * MS,
        service: "web".to_owned(),
        include_warning: false,
        threshold: 1,
        seed: None,
        dc: "dc-a".to_owned(),
        zone: Some("a1-z".to_owned()),
        rtt_ms: vec![("dc-a".to_owned(), 0), ("dc-b".to_owned(), 20)],
        down: Vec::new(),
        index,
        instances,
    }
}

fn passing(n: usize) -> (InstanceRef, Status) {
    (web()[n].reference(), Status::Passing)
}

/// The fail report of revision 3, acknowledged at 1 s.
fn fail_report() -> RegistryWrite {
    RegistryWrite {
        id: 0,
        client: 500,
        member: "b1".to_owned(),
        invoke: 900 * MS,
        complete: Some(1000 * MS),
        call: RegistryCall::Report { check: check_of(&web()[0]), status: Status::Critical, output: "c1-r1".to_owned() },
        outcome: WriteOutcome::Ok { revision: None },
    }
}

fn history(answers: Vec<DiscoveryAnswer>, samples: Vec<(u64, i64)>) -> History {
    let catalog_samples = samples
        .into_iter()
        .map(|(at_ms, index)| CatalogSample { at: at_ms * MS, member: "a1".to_owned(), index: Some(index) })
        .collect();
    History {
        discovery: Some(DiscoveryRecord {
            writes: vec![fail_report()],
            answers,
            truth: vec![truth()],
            catalog_samples,
            founders: vec!["a1".to_owned()],
            fault_spans: Vec::new(),
            sampled_until: 10_000 * MS,
            window_ms: WINDOW_MS,
            settle_ms: 1000,
        }),
        ..History::default()
    }
}

fn violations(h: &History) -> Vec<DiscoveryViolation> {
    checker::check(h, &CheckOptions::default()).discovery
}

#[test]
fn a_correct_history_passes() {
    let answers = vec![
        // Zone a1-z first, then the rest of dc-a, then dc-b.
        answer(2, 500, vec![passing(0), passing(1), passing(2)]),
        // a1's instance failed at revision 3: the answer fails over to the rest of dc-a.
        answer(3, 1100, vec![passing(1), passing(2)]),
        answer(4, 1500, vec![passing(0), passing(1), passing(2)]),
    ];
    let h = history(answers, vec![(0, 0), (400, 2), (1050, 3), (1400, 4)]);
    let report = checker::check(&h, &CheckOptions::default());
    assert!(report.discovery.is_empty(), "{report}");
    let stats = &report.discovery_stats;
    assert_eq!((stats.answers, stats.judged, stats.unjudged), (3, 3, 0));
    assert_eq!(stats.lags_measured, 1, "the fail report's revision reached a1's catalog: {stats:?}");
    assert_eq!(stats.lag_max_ms, 50);
}

#[test]
fn an_answer_holding_a_critical_instance_fails() {
    let answers = vec![answer(3, 1100, vec![passing(0), passing(1), passing(2)])];
    let found = violations(&history(answers, vec![(0, 0), (1050, 3)]));
    assert!(
        matches!(&found[..], [DiscoveryViolation::Unhealthy { index: 3, health: Status::Critical, since: 3, .. }]),
        "{found:?}"
    );
    assert!(found[0].to_string().contains("web/a1/web-a1"), "{}", found[0]);
}

#[test]
fn an_incomplete_or_reordered_answer_fails() {
    let missing = vec![answer(2, 500, vec![passing(0), passing(2)])];
    let found = violations(&history(missing, vec![(0, 0), (400, 2), (1050, 4)]));
    assert!(matches!(&found[..], [DiscoveryViolation::NotTheRanking { .. }]), "{found:?}");
    let reordered = vec![answer(2, 500, vec![passing(2), passing(0), passing(1)])];
    let found = violations(&history(reordered, vec![(0, 0), (400, 2), (1050, 4)]));
    assert!(matches!(&found[..], [DiscoveryViolation::NotTheRanking { .. }]), "{found:?}");
}

#[test]
fn an_unregistered_instance_in_an_answer_fails() {
    let answers = vec![answer(1, 300, vec![passing(0)])];
    let found = violations(&history(answers, vec![(0, 0), (1050, 4)]));
    assert!(matches!(&found[..], [DiscoveryViolation::NotRegistered { index: 1, .. }]), "{found:?}");
}

#[test]
fn a_stale_answer_past_the_window_fails() {
    // a1's catalog stays at revision 2 long after the fail report of revision 3 was acknowledged at 1 s, with no
    // fault: its answer at 4.5 s is correct for revision 2, but stale.
    let answers = vec![answer(2, 4500, vec![passing(0), passing(1), passing(2)])];
    let found = violations(&history(answers, vec![(0, 0), (400, 2)]));
    assert!(
        found.iter().any(|v| matches!(v, DiscoveryViolation::StaleAnswer { revision: 3, index: 2, .. })),
        "{found:?}"
    );
    assert!(found.iter().any(|v| matches!(v, DiscoveryViolation::StaleCatalog { revision: 3, .. })), "{found:?}");
}

#[test]
fn staleness_is_not_judged_across_a_fault_or_within_the_window() {
    let within = vec![answer(2, 2500, vec![passing(0), passing(1), passing(2)])];
    let mut h = history(within, vec![(0, 0), (400, 2), (3500, 3)]);
    assert!(violations(&h).is_empty(), "{:?}", violations(&h));
    let late = answer(2, 4500, vec![passing(0), passing(1), passing(2)]);
    let record = h.discovery.as_mut().unwrap();
    record.answers = vec![late];
    record.catalog_samples.pop();
    record.fault_spans = vec![(1500 * MS, 2000 * MS)];
    assert!(violations(&h).is_empty(), "{:?}", violations(&h));
}

/// A report sent after the fail report was acknowledged (the last word on the check), acknowledged at 1.2 s.
fn later_report(status: Status) -> RegistryWrite {
    let mut later = fail_report();
    later.id = 1;
    later.invoke = 1100 * MS;
    later.complete = Some(1200 * MS);
    later.call = RegistryCall::Report { check: check_of(&web()[0]), status, output: "c1-r9".to_owned() };
    later
}

#[test]
fn an_acknowledged_report_missing_from_the_registry_fails() {
    // The last word was "critical", the run went on for a window, and the check ended passing (revision 4).
    let mut h = history(Vec::new(), vec![(0, 0), (1050, 4)]);
    h.discovery.as_mut().unwrap().writes.push(later_report(Status::Critical));
    let found = violations(&h);
    assert!(matches!(&found[..], [DiscoveryViolation::LostWrite { write: 1, .. }]), "{found:?}");
}

#[test]
fn a_report_without_a_record_of_its_own_is_kept_if_the_check_ended_in_its_status() {
    // A runner publishes changes only: a pass on a passing check leaves no record, and is not lost.
    let mut h = history(Vec::new(), vec![(0, 0), (1050, 4)]);
    h.discovery.as_mut().unwrap().writes.push(later_report(Status::Passing));
    assert!(violations(&h).is_empty(), "{:?}", violations(&h));
    // Nor is one the run did not go a window past.
    let mut h = history(Vec::new(), vec![(0, 0), (1050, 4)]);
    let record = h.discovery.as_mut().unwrap();
    record.writes.push(later_report(Status::Critical));
    record.sampled_until = 4000 * MS;
    assert!(violations(&h).is_empty(), "{:?}", violations(&h));
}
