//! Verdict tables over the canonical topology: voters a1, a2 (dc-a), b1, b2 (dc-b), c1 (dc-c) and the far
//! learner d1 (dc-d). Each case names the behaviour it pins down.

use std::collections::BTreeMap;

use meridian_types::{DcName, NodeId};

use super::*;
use crate::record::DcState;
use crate::report::{PeerSeen, ReceivedReport, Report};

const NAMES: [(&str, &str, bool); 6] = [
    ("a1", "dc-a", true),
    ("a2", "dc-a", true),
    ("b1", "dc-b", true),
    ("b2", "dc-b", true),
    ("c1", "dc-c", true),
    ("d1", "dc-d", false),
];

const CONFIG: VerdictConfig = VerdictConfig {
    detection_window_ms: 2000,
    stable_window_ms: 5000,
    stale_report_ms: 1000,
    quorum: Quorum::MajorityOutside,
};

fn id(name: &str) -> NodeId {
    NodeId(NAMES.iter().position(|(n, _, _)| *n == name).expect("known member") as u64 + 1)
}

fn members() -> Vec<MemberInfo> {
    NAMES
        .iter()
        .map(|(n, dc, voter)| MemberInfo { id: id(n), name: (*n).into(), dc: DcName((*dc).into()), voter: *voter })
        .collect()
}

fn dc(name: &str) -> DcName {
    DcName(name.into())
}

/// Reports at `now` = 10_000 from every member in `fresh`: each reaches everyone except the members listed
/// against it in `silent`, which it has not heard from for the given milliseconds.
fn reports(fresh: &[&str], silent: &[(&str, &[&str], u64)]) -> BTreeMap<NodeId, ReceivedReport> {
    fresh
        .iter()
        .map(|reporter| {
            let peers = NAMES
                .iter()
                .filter(|(n, _, _)| n != reporter)
                .map(|(n, _, _)| {
                    let quiet = silent.iter().find(|(r, ms, _)| r == reporter && ms.contains(n)).map(|(_, _, q)| *q);
                    PeerSeen {
                        member: id(n),
                        reachable: quiet.is_none_or(|q| q < 1000),
                        silent_ms: quiet.unwrap_or(50),
                        rtt_ms: Some(1),
                    }
                })
                .collect();
            (id(reporter), ReceivedReport { report: Report { reporter: id(reporter), peers }, received_ms: 10_000 })
        })
        .collect()
}

fn states(reports: &BTreeMap<NodeId, ReceivedReport>, config: &VerdictConfig) -> BTreeMap<String, DcState> {
    assess(&members(), reports, 10_000, config).into_iter().map(|(dc, a)| (dc.0, a.state)).collect()
}

const EVERYONE: &[&str] = &["a1", "a2", "b1", "b2", "c1", "d1"];
const DC_A: &[&str] = &["a1", "a2"];

#[test]
fn everyone_reaching_everyone_is_up() {
    let s = states(&reports(EVERYONE, &[]), &CONFIG);
    assert_eq!(s.len(), 4);
    assert!(s.values().all(|st| *st == DcState::Up), "{s:?}");
}

#[test]
fn an_isolated_datacenter_silent_for_the_window_is_down() {
    let silent: Vec<(&str, &[&str], u64)> = ["b1", "b2", "c1", "d1"].iter().map(|r| (*r, DC_A, 2500)).collect();
    let r = reports(&["b1", "b2", "c1", "d1"], &silent);
    let a = &assess(&members(), &r, 10_000, &CONFIG)[&dc("dc-a")];
    assert_eq!(a.state, DcState::Down);
    assert_eq!(a.evidence.len(), 4, "every fresh reporter outside dc-a is recorded");
    assert!(a.evidence.iter().all(|e| e.reached.is_empty() && e.unreachable == ["a1", "a2"]));
}

#[test]
fn an_isolated_datacenter_is_not_down_before_the_window_ends() {
    let silent: Vec<(&str, &[&str], u64)> = ["b1", "b2", "c1", "d1"].iter().map(|r| (*r, DC_A, 1500)).collect();
    let s = states(&reports(&["b1", "b2", "c1", "d1"], &silent), &CONFIG);
    assert_eq!(s["dc-a"], DcState::Degraded);
}

#[test]
fn a_minority_outside_cannot_declare_down() {
    // Only c1 (one of the three voters outside dc-a) and the learner report: the dc-b reports are stale.
    let silent: Vec<(&str, &[&str], u64)> = vec![("c1", DC_A, 5000), ("d1", DC_A, 5000)];
    let s = states(&reports(&["c1", "d1"], &silent), &CONFIG);
    assert_eq!(s["dc-a"], DcState::Degraded);
    // The planted bug's rule accepts the minority's view.
    let lenient = VerdictConfig { quorum: Quorum::LeaderAlone, ..CONFIG };
    assert_eq!(states(&reports(&["c1", "d1"], &silent), &lenient)["dc-a"], DcState::Down);
}

#[test]
fn an_isolated_leader_alone_declares_nothing_down() {
    // a1 is cut off from everyone; only its own report is fresh.
    let others: &[&str] = &["a2", "b1", "b2", "c1", "d1"];
    let s = states(&reports(&["a1"], &[("a1", others, 9000)]), &CONFIG);
    assert!(s.values().all(|st| *st != DcState::Down), "{s:?}");
}

#[test]
fn one_member_reached_by_no_one_degrades_its_datacenter() {
    let silent: Vec<(&str, &[&str], u64)> =
        ["a1", "b1", "b2", "c1", "d1"].iter().map(|r| (*r, &["a2"] as &[&str], 5000)).collect();
    let s = states(&reports(&["a1", "b1", "b2", "c1", "d1"], &silent), &CONFIG);
    assert_eq!(s["dc-a"], DcState::Degraded);
    assert_eq!(s["dc-b"], DcState::Up);
}

#[test]
fn a_cut_link_is_partitioned_not_down() {
    // dc-a and dc-b cannot reach each other; dc-c and dc-d reach both.
    let silent: Vec<(&str, &[&str], u64)> =
        vec![("a1", &["b1", "b2"], 9000), ("a2", &["b1", "b2"], 9000), ("b1", DC_A, 9000), ("b2", DC_A, 9000)];
    let s = states(&reports(EVERYONE, &silent), &CONFIG);
    assert_eq!(s["dc-a"], DcState::Partitioned);
    assert_eq!(s["dc-b"], DcState::Partitioned);
    assert_eq!(s["dc-c"], DcState::Up);
}

#[test]
fn stale_reports_are_ignored_and_a_datacenter_nobody_reports_on_is_not_assessed() {
    let mut r = reports(&["a1"], &[]);
    r.get_mut(&id("a1")).unwrap().received_ms = 8_000;
    assert!(assess(&members(), &r, 10_000, &CONFIG).is_empty());
}

fn assessed(state: DcState) -> BTreeMap<DcName, Assessment> {
    BTreeMap::from([(dc("dc-a"), Assessment { state, evidence: Vec::new() })])
}

fn recorded(state: DcState) -> BTreeMap<DcName, DcState> {
    BTreeMap::from([(dc("dc-a"), state)])
}

#[test]
fn down_is_written_at_once() {
    let mut v = Verdicts::new(CONFIG);
    let changes = v.decide(0, &recorded(DcState::Up), assessed(DcState::Down));
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].state, changes[0].since_ms), (DcState::Down, 0));
}

#[test]
fn up_again_waits_for_the_stable_window() {
    let mut v = Verdicts::new(CONFIG);
    assert!(v.decide(0, &recorded(DcState::Down), assessed(DcState::Up)).is_empty());
    assert!(v.decide(4_999, &recorded(DcState::Down), assessed(DcState::Up)).is_empty());
    let changes = v.decide(5_000, &recorded(DcState::Down), assessed(DcState::Up));
    assert_eq!((changes[0].state, changes[0].since_ms), (DcState::Up, 0));
}

#[test]
fn a_flap_restarts_the_window() {
    let mut v = Verdicts::new(CONFIG);
    assert!(v.decide(0, &recorded(DcState::Down), assessed(DcState::Up)).is_empty());
    assert!(v.decide(3_000, &recorded(DcState::Down), assessed(DcState::Degraded)).is_empty());
    assert!(v.decide(7_000, &recorded(DcState::Down), assessed(DcState::Up)).is_empty(), "up again only since 7 s");
    assert!(v.decide(11_999, &recorded(DcState::Down), assessed(DcState::Up)).is_empty());
    assert_eq!(v.decide(12_000, &recorded(DcState::Down), assessed(DcState::Up)).len(), 1);
}

#[test]
fn partitioned_and_degraded_wait_for_the_detection_window() {
    let mut v = Verdicts::new(CONFIG);
    assert!(v.decide(0, &recorded(DcState::Up), assessed(DcState::Partitioned)).is_empty());
    assert!(v.decide(1_999, &recorded(DcState::Up), assessed(DcState::Partitioned)).is_empty());
    assert_eq!(v.decide(2_000, &recorded(DcState::Up), assessed(DcState::Partitioned))[0].state, DcState::Partitioned);
}

#[test]
fn a_first_verdict_waits_for_the_detection_window_and_a_matching_record_settles_the_track() {
    let none = BTreeMap::new();
    let mut v = Verdicts::new(CONFIG);
    assert!(v.decide(0, &none, assessed(DcState::Up)).is_empty());
    assert_eq!(v.decide(2_000, &none, assessed(DcState::Up))[0].state, DcState::Up);
    // The write failed: the change is due again next round.
    assert_eq!(v.decide(2_100, &none, assessed(DcState::Up)).len(), 1);
    assert!(v.decide(2_200, &recorded(DcState::Up), assessed(DcState::Up)).is_empty());
    assert_eq!(v.track(&dc("dc-a")), DcTrack::Steady);
}
