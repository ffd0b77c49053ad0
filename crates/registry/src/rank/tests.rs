//! Ranking tables over one fixture: dc-a (zone z1: a1, a2; zone z2: a3; no zone: a4), dc-b (b1, b2, RTT 20),
//! dc-c (c1, RTT 10), dc-d and dc-e (d1, e1, RTT unknown); the instances whose id ends in 1 carry the tag
//! `blue`, except d1. The client is in dc-a, zone z1, unless a case says
//! otherwise. Each case changes some health, the query, or both, and states the tiers, the primary and the
//! flat answer that must follow.

use std::collections::{BTreeMap, BTreeSet};

use meridian_types::{DcName, ZoneName};

use super::*;
use crate::instance::tests::web;
use Status::{Critical as C, Passing as P, Warning as W};

const FIXTURE: [(&str, &str, Option<&str>); 9] = [
    ("a1", "dc-a", Some("z1")),
    ("a2", "dc-a", Some("z1")),
    ("a3", "dc-a", Some("z2")),
    ("a4", "dc-a", None),
    ("b1", "dc-b", Some("z1")),
    ("b2", "dc-b", None),
    ("c1", "dc-c", None),
    ("d1", "dc-d", None),
    ("e1", "dc-e", None),
];

fn instances() -> Vec<Instance> {
    FIXTURE
        .iter()
        .map(|(id, dc, zone)| {
            let mut i = web(id, dc, *zone);
            i.tags = if id.ends_with('1') && *dc != "dc-d" { vec!["blue".into()] } else { vec![] };
            i.weights = crate::instance::Weights { passing: 10, warning: 3 };
            i
        })
        .collect()
}

fn candidates<'a>(all: &'a [Instance], health: &[(&str, Status)]) -> Vec<Candidate<'a>> {
    let of = |id: &str| health.iter().find(|(i, _)| *i == id).map_or(P, |(_, s)| *s);
    all.iter().map(|i| Candidate { instance: i, health: of(i.id.as_str()) }).collect()
}

fn rtts() -> BTreeMap<DcName, u64> {
    BTreeMap::from([(DcName::from("dc-b"), 20), (DcName::from("dc-c"), 10)])
}

/// One case: (name, health overrides, client zone, down dcs, threshold, include warning, tags,
/// tiers as "scope:ids", primary, answer ids, primary reason kind).
type Case = (
    &'static str,
    &'static [(&'static str, Status)],
    Option<&'static str>,
    &'static [&'static str],
    usize,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    Option<usize>,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const CASES: &[Case] = &[
    (
        "everything healthy: the client's zone is primary",
        &[], Some("z1"), &[], 1, false, &[],
        &["zone z1 of dc-a:a1,a2", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(0), "a1 a2 a3 a4 c1 b1 b2 d1 e1", "local_zone",
    ),
    (
        "the zone is critical: the rest of the datacenter takes over",
        &[("a1", C), ("a2", C)], Some("z1"), &[], 1, false, &[],
        &["zone z1 of dc-a:", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(1), "a3 a4 c1 b1 b2 d1 e1", "failover",
    ),
    (
        "the datacenter is critical: the nearest datacenter by RTT takes over",
        &[("a1", C), ("a2", C), ("a3", C), ("a4", C)], Some("z1"), &[], 1, false, &[],
        &["zone z1 of dc-a:", "dc-a outside zone z1:", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(2), "c1 b1 b2 d1 e1", "failover",
    ),
    (
        "the client's datacenter is down: it has no tier at all",
        &[], Some("z1"), &["dc-a"], 1, false, &[],
        &["dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(0), "c1 b1 b2 d1 e1", "failover",
    ),
    (
        "a remote datacenter that is down is skipped",
        &[("a1", C), ("a2", C), ("a3", C), ("a4", C)], None, &["dc-c"], 1, false, &[],
        &["dc-a:", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(1), "b1 b2 d1 e1", "failover",
    ),
    (
        "threshold 2: one healthy in the zone is not enough, and is a last resort",
        &[("a1", C)], Some("z1"), &[], 2, false, &[],
        &["zone z1 of dc-a:a2", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(1), "a3 a4 c1 b1 b2 d1 e1 a2", "failover",
    ),
    (
        "threshold 3 reached nowhere: the first tier with anyone serves",
        &[], Some("z1"), &[], 3, false, &[],
        &["zone z1 of dc-a:a1,a2", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(0), "a1 a2 a3 a4 c1 b1 b2 d1 e1", "local_zone",
    ),
    (
        "warning instances are left out unless included",
        &[("a1", W), ("a2", C)], Some("z1"), &[], 1, false, &[],
        &["zone z1 of dc-a:", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(1), "a3 a4 c1 b1 b2 d1 e1", "failover",
    ),
    (
        "included warning instances count and come after passing ones",
        &[("a1", W)], Some("z1"), &[], 1, true, &[],
        &["zone z1 of dc-a:a2,a1", "dc-a outside zone z1:a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(0), "a2 a1 a3 a4 c1 b1 b2 d1 e1", "local_zone",
    ),
    (
        "a tag filter keeps matching instances, and datacenters without one have no tier",
        &[], Some("z1"), &[], 1, false, &["blue"],
        &["zone z1 of dc-a:a1", "dc-a outside zone z1:", "dc-c:c1", "dc-b:b1", "dc-e:e1"],
        Some(0), "a1 c1 b1 e1", "local_zone",
    ),
    (
        "a client without a zone gets its whole datacenter first",
        &[], None, &[], 1, false, &[],
        &["dc-a:a1,a2,a3,a4", "dc-c:c1", "dc-b:b1,b2", "dc-d:d1", "dc-e:e1"],
        Some(0), "a1 a2 a3 a4 c1 b1 b2 d1 e1", "local_dc",
    ),
    (
        "nothing healthy: no primary, an empty answer",
        &[("a1", C), ("a2", C), ("a3", C), ("a4", C), ("b1", C), ("b2", C), ("c1", C), ("d1", C), ("e1", C)],
        Some("z1"), &[], 1, false, &[],
        &["zone z1 of dc-a:", "dc-a outside zone z1:", "dc-c:", "dc-b:", "dc-d:", "dc-e:"],
        None, "", "",
    ),
];

fn kind(reason: &Reason) -> &'static str {
    match reason {
        Reason::LocalZone => "local_zone",
        Reason::LocalDc => "local_dc",
        Reason::RemoteDc { .. } => "remote_dc",
        Reason::Failover { .. } => "failover",
        Reason::BelowThreshold { .. } => "below_threshold",
    }
}

#[test]
fn ranking_table() {
    let all = instances();
    let rtt = rtts();
    for (name, health, zone, down, threshold, warn, tags, want_tiers, want_primary, want_answer, want_reason) in CASES {
        let from = Locality { dc: DcName::from("dc-a"), zone: zone.map(ZoneName::from) };
        let down: BTreeSet<DcName> = down.iter().map(|d| DcName::from(*d)).collect();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let query = Query {
            from: &from,
            rtt_ms: &rtt,
            down: &down,
            policy: ServicePolicy { failover_threshold: *threshold },
            include_warning: *warn,
            tags: &tags,
            seed: None,
        };
        let ranked = rank(&candidates(&all, health), &query);
        let tiers: Vec<String> = ranked
            .tiers
            .iter()
            .map(|t| {
                let ids: Vec<&str> = t.instances.iter().map(|e| e.instance.id.as_str()).collect();
                format!("{}:{}", t.scope, ids.join(","))
            })
            .collect();
        assert_eq!(tiers, *want_tiers, "{name}: tiers");
        assert_eq!(ranked.primary, *want_primary, "{name}: primary");
        let answer: Vec<&str> = ranked.answer().iter().map(|e| e.instance.id.as_str()).collect();
        assert_eq!(answer.join(" "), *want_answer, "{name}: answer");
        assert_eq!(ranked.primary_tier().map_or("", |t| kind(&t.reason)), *want_reason, "{name}: reason");
        if let Some(p) = ranked.primary {
            assert!(ranked.tiers[..p].iter().all(|t| kind(&t.reason) == "below_threshold"), "{name}: passed over");
        }
        assert!(ranked.answer().iter().all(|e| e.health != C), "{name}: never a critical instance");
    }
}

#[test]
fn failover_reasons_say_what_was_passed_over() {
    let all = instances();
    let (rtt, none) = (rtts(), BTreeSet::new());
    let from = Locality { dc: DcName::from("dc-a"), zone: Some(ZoneName::from("z1")) };
    let query = Query {
        from: &from,
        rtt_ms: &rtt,
        down: &none,
        policy: ServicePolicy::default(),
        include_warning: false,
        tags: &[],
        seed: None,
    };
    let dead = [("a1", C), ("a2", C), ("a3", C), ("a4", C)];
    let ranked = rank(&candidates(&all, &dead), &query);
    let Reason::Failover { from: scope, why } = &ranked.tiers[2].reason else { panic!("{:?}", ranked.tiers[2]) };
    assert_eq!(scope, &Scope::Zone { dc: DcName::from("dc-a"), zone: ZoneName::from("z1") });
    assert_eq!(why, "0 healthy in zone z1 of dc-a, 0 healthy in dc-a outside zone z1 (threshold 1)");
    assert_eq!(ranked.tiers[0].reason, Reason::BelowThreshold { healthy: 0, threshold: 1 });
    assert_eq!(ranked.tiers[3].reason, Reason::RemoteDc { rtt_ms: Some(20) });

    let down = BTreeSet::from([DcName::from("dc-a")]);
    let ranked = rank(&candidates(&all, &[]), &Query { down: &down, ..query });
    let Reason::Failover { why, .. } = &ranked.tiers[0].reason else { panic!("{:?}", ranked.tiers[0]) };
    assert_eq!(why, "dc-a is down (threshold 1)");
    assert_eq!(ranked.excluded_down, vec![DcName::from("dc-a")]);

    let json = serde_json::to_value(&ranked).unwrap();
    assert_eq!(json["primary"], 0);
    assert_eq!(json["tiers"][0]["reason"]["kind"], "failover");
    assert_eq!(json["tiers"][0]["reason"]["from"], serde_json::json!({"kind": "zone", "dc": "dc-a", "zone": "z1"}));
    assert_eq!(json["tiers"][0]["scope"], serde_json::json!({"kind": "remote_dc", "dc": "dc-c", "rtt_ms": 10}));
    assert_eq!(json["tiers"][0]["instances"][0]["instance"]["id"], "c1");
    assert_eq!(json["tiers"][0]["instances"][0]["weight"], 10);
}

#[test]
fn shuffling_follows_the_seed_only() {
    let all: Vec<Instance> = (0..8).map(|n| web(&format!("w{n}"), "dc-a", None)).collect();
    let cands: Vec<Candidate<'_>> = all.iter().map(|i| Candidate { instance: i, health: P }).collect();
    let (rtt, down) = (BTreeMap::new(), BTreeSet::new());
    let from = Locality { dc: DcName::from("dc-a"), zone: None };
    let order = |seed: Option<u64>| -> Vec<String> {
        let query = Query {
            from: &from,
            rtt_ms: &rtt,
            down: &down,
            policy: ServicePolicy::default(),
            include_warning: false,
            tags: &[],
            seed,
        };
        rank(&cands, &query).answer().iter().map(|e| e.instance.id.to_string()).collect()
    };
    let sorted: Vec<String> = (0..8).map(|n| format!("w{n}")).collect();
    assert_eq!(order(None), sorted, "without a seed, (node, id) order");
    assert_eq!(order(Some(7)), order(Some(7)), "a seed fixes the order");
    let orders: BTreeSet<Vec<String>> = (0..20).map(|s| order(Some(s))).collect();
    assert!(orders.len() > 10, "different seeds shuffle differently: {} orders", orders.len());
    for o in &orders {
        let mut o = o.clone();
        o.sort();
        assert_eq!(o, sorted, "a shuffle is a permutation");
    }
}

#[test]
fn entries_carry_the_weight_of_their_health() {
    let all = instances();
    let (rtt, down) = (rtts(), BTreeSet::new());
    let from = Locality { dc: DcName::from("dc-a"), zone: Some(ZoneName::from("z1")) };
    let query = Query {
        from: &from,
        rtt_ms: &rtt,
        down: &down,
        policy: ServicePolicy::default(),
        include_warning: true,
        tags: &[],
        seed: None,
    };
    let ranked = rank(&candidates(&all, &[("a1", W)]), &query);
    let weights: Vec<(&str, u16)> =
        ranked.tiers[0].instances.iter().map(|e| (e.instance.id.as_str(), e.weight)).collect();
    assert_eq!(weights, [("a2", 10), ("a1", 3)]);
}
