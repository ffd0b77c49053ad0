//! The records of each kind of lookup over one fixture: `web` in dc-a (a1 in zone z1, a2 in z2), dc-b (b1 by
//! IP, b2 by host name; RTT 20 ms) and dc-c (c1 on IPv6; RTT 50 ms); a1 and b1 carry the tag `blue`. Health is
//! set per case through a TTL check's initial status.

use std::collections::BTreeMap;
use std::time::Duration;

use hickory_proto::rr::RData;
use meridian_proto::mvccpb::KeyValue;
use meridian_registry::check::{CheckKind, Thresholds, TtlCheck};
use meridian_registry::{CheckDef, CheckId, Instance, InstanceId, NodeName, Registration, Status, Weights};
use meridian_types::{DcName, ZoneName};

use super::*;
use crate::dns::name::parse;

/// (id, dc, zone, address, port, tags).
type Row = (&'static str, &'static str, Option<&'static str>, &'static str, u16, &'static [&'static str]);

const FIXTURE: [Row; 5] = [
    ("a1", "dc-a", Some("z1"), "10.0.1.1", 8080, &["blue"]),
    ("a2", "dc-a", Some("z2"), "10.0.1.2", 8080, &[]),
    ("b1", "dc-b", None, "10.0.2.1", 8080, &["Blue"]),
    ("b2", "dc-b", None, "web-b2.example.com", 9090, &[]),
    ("c1", "dc-c", None, "2001:db8::c1", 8080, &[]),
];

fn registration(
    id: &str,
    dc: &str,
    zone: Option<&str>,
    address: &str,
    port: u16,
    tags: &[&str],
    health: Status,
) -> Registration {
    let instance = Instance {
        service: ServiceName::new("web").unwrap(),
        id: InstanceId::new(id).unwrap(),
        node: NodeName::new(format!("Node-{id}")).unwrap(),
        node_address: format!("10.9.0.{}", id.as_bytes()[1] - b'0'),
        address: address.into(),
        port,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        meta: BTreeMap::new(),
        dc: DcName::from(dc),
        zone: zone.map(ZoneName::from),
        weights: Weights { passing: 10, warning: 2 },
        lease: None,
    };
    let check = CheckDef {
        id: CheckId::new("ttl").unwrap(),
        name: "ttl".into(),
        notes: String::new(),
        kind: CheckKind::Ttl(TtlCheck { ttl: Duration::from_secs(30) }),
        initial: health,
        thresholds: Thresholds::default(),
        deregister_critical_after: None,
    };
    Registration { instance, checks: vec![check] }
}

/// The fixture's catalog with `health` overrides (every other instance passing).
fn catalog(health: &[(&str, Status)]) -> Catalog {
    let kvs: Vec<KeyValue> = FIXTURE
        .iter()
        .enumerate()
        .map(|(n, (id, dc, zone, addr, port, tags))| {
            let h = health.iter().find(|(i, _)| i == id).map_or(Status::Passing, |(_, s)| *s);
            let reg = registration(id, dc, *zone, addr, *port, tags, h);
            let rev = n as i64 + 2;
            KeyValue {
                key: reg.key().into_bytes(),
                value: reg.encode(),
                create_revision: rev,
                mod_revision: rev,
                ..Default::default()
            }
        })
        .collect();
    Catalog::load(&kvs, 42)
}

fn surroundings() -> Surroundings {
    let mut s = Surroundings::default();
    s.rtt_ms.insert(DcName::from("dc-a"), 0);
    s.rtt_ms.insert(DcName::from("dc-b"), 20);
    s.rtt_ms.insert(DcName::from("dc-c"), 50);
    s
}

fn at(dc: &str, zone: Option<&str>) -> Locality {
    Locality { dc: DcName::from(dc), zone: zone.map(ZoneName::from) }
}

struct Case {
    health: Vec<(&'static str, Status)>,
    settings: DnsSettings,
    surroundings: Surroundings,
}

impl Case {
    fn new() -> Case {
        Case { health: vec![], settings: DnsSettings::new("meridian").unwrap(), surroundings: surroundings() }
    }

    fn health(mut self, h: &[(&'static str, Status)]) -> Case {
        self.health = h.to_vec();
        self
    }

    fn ask(&self, name: &str, qtype: RecordType, from: &Locality) -> Answer {
        let catalog = catalog(&self.health);
        let scene = Scene { catalog: &catalog, surroundings: &self.surroundings, settings: &self.settings };
        let qname = Name::from_ascii(name).unwrap().to_lowercase();
        let lookup = parse(&qname, &self.settings.domain).expect("inside the domain");
        answer(&scene, &lookup, &qname, qtype, from)
    }
}

/// SRV answers as "priority weight port target".
fn srv(a: &Answer) -> Vec<String> {
    a.answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(s) => format!("{} {} {} {}", s.priority, s.weight, s.port, s.target),
            other => panic!("not SRV: {other:?}"),
        })
        .collect()
}

fn addresses(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => format!("{} {}", r.name, a.0),
            RData::AAAA(a) => format!("{} {}", r.name, a.0),
            other => panic!("not an address: {other:?}"),
        })
        .collect()
}

fn assert_soa_only(a: &Answer) {
    assert!(a.answers.is_empty(), "{a:?}");
    assert_eq!(a.authority.len(), 1);
    assert!(matches!(&a.authority[0].data, RData::SOA(soa) if soa.serial == 42 && soa.minimum == 0), "{a:?}");
}

const A1: &str = "1 10 8080 0a000101.addr.dc-a.meridian.";
const A2: &str = "2 10 8080 0a000102.addr.dc-a.meridian.";

#[test]
fn srv_answers_are_tiered_nearest_first_with_glue() {
    let a = Case::new().ask("web.service.meridian.", RecordType::SRV, &at("dc-a", Some("z1")));
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(
        srv(&a),
        [
            A1,
            A2,
            "3 10 8080 0a000201.addr.dc-b.meridian.",
            "3 10 9090 web-b2.example.com.",
            "4 10 8080 20010db80000000000000000000000c1.addr.dc-c.meridian.",
        ]
    );
    assert!(a.authority.is_empty());
    assert_eq!(
        addresses(&a.additionals),
        [
            "0a000101.addr.dc-a.meridian. 10.0.1.1",
            "0a000102.addr.dc-a.meridian. 10.0.1.2",
            "0a000201.addr.dc-b.meridian. 10.0.2.1",
            "20010db80000000000000000000000c1.addr.dc-c.meridian. 2001:db8::c1",
        ],
        "glue for every IP target, none for the host name"
    );
    let rfc = Case::new().ask("_web._tcp.service.meridian.", RecordType::SRV, &at("dc-a", Some("z1")));
    assert_eq!(srv(&rfc), srv(&a), "RFC 2782 names answer the same");
    assert_eq!(rfc.answers[0].name.to_ascii(), "_web._tcp.service.meridian.");
}

#[test]
fn a_failed_local_datacenter_fails_over_to_the_nearest_other() {
    let case = Case::new().health(&[("a1", Status::Critical), ("a2", Status::Critical)]);
    let a = case.ask("web.service.meridian.", RecordType::SRV, &at("dc-a", Some("z1")));
    assert_eq!(
        srv(&a)[..2],
        ["1 10 8080 0a000201.addr.dc-b.meridian.", "1 10 9090 web-b2.example.com."],
        "dc-b becomes the primary tier"
    );
    assert!(srv(&a).iter().all(|s| !s.contains("dc-a")), "critical instances never answer");
    let a = case.ask("web.service.meridian.", RecordType::A, &at("dc-a", Some("z1")));
    assert_eq!(addresses(&a.answers), ["web.service.meridian. 10.0.2.1"]);
}

#[test]
fn warning_instances_answer_with_their_weight_unless_only_passing() {
    let case = Case::new().health(&[("a1", Status::Warning)]);
    let from = at("dc-a", Some("z1"));
    let a = case.ask("web.service.meridian.", RecordType::SRV, &from);
    assert_eq!(srv(&a)[0], "1 2 8080 0a000101.addr.dc-a.meridian.", "warning weight");
    let mut only = case;
    only.settings.only_passing = true;
    let a = only.ask("web.service.meridian.", RecordType::SRV, &from);
    assert_eq!(srv(&a)[0], "1 10 8080 0a000102.addr.dc-a.meridian.", "a1 left out; a2 is now the primary tier");
}

#[test]
fn address_answers_follow_the_family_and_skip_host_names() {
    let from = at("dc-b", None);
    let a = Case::new().ask("web.service.meridian.", RecordType::A, &from);
    assert_eq!(
        addresses(&a.answers),
        ["web.service.meridian. 10.0.2.1", "web.service.meridian. 10.0.1.1", "web.service.meridian. 10.0.1.2"],
        "dc-b's first, from a client in dc-b"
    );
    let a = Case::new().ask("web.service.meridian.", RecordType::AAAA, &from);
    assert_eq!(addresses(&a.answers), ["web.service.meridian. 2001:db8::c1"]);
    let a = Case::new().ask("web.service.dc-b.meridian.", RecordType::AAAA, &from);
    assert_eq!(a.rcode, ResponseCode::NoError, "dc-b has web, but no IPv6 address: NODATA");
    assert_soa_only(&a);
}

#[test]
fn tags_and_datacenters_narrow_the_answer() {
    let from = at("dc-a", Some("z1"));
    let a = Case::new().ask("blue.web.service.meridian.", RecordType::SRV, &from);
    assert_eq!(srv(&a), [A1, "2 10 8080 0a000201.addr.dc-b.meridian."], "tags match case-insensitively");
    let a = Case::new().ask("_web._BLUE.service.meridian.", RecordType::SRV, &from);
    assert_eq!(srv(&a).len(), 2);
    let a = Case::new().ask("web.service.dc-b.meridian.", RecordType::SRV, &from);
    assert_eq!(
        srv(&a),
        ["1 10 8080 0a000201.addr.dc-b.meridian.", "1 10 9090 web-b2.example.com."],
        "only dc-b, and it is then the primary tier"
    );
}

#[test]
fn unknown_names_are_nxdomain_and_empty_ones_nodata_both_with_the_soa() {
    let from = at("dc-a", None);
    for name in [
        "db.service.meridian.",
        "red.web.service.meridian.",
        "web.service.dc-z.meridian.",
        "nope.meridian.",
        "x_y.service.meridian.",
        "node-zz.node.meridian.",
        "node-a1.node.dc-b.meridian.",
    ] {
        let a = Case::new().ask(name, RecordType::SRV, &from);
        assert_eq!(a.rcode, ResponseCode::NXDomain, "{name}");
        assert_soa_only(&a);
    }
    let all_critical: Vec<_> = FIXTURE.iter().map(|f| (f.0, Status::Critical)).collect();
    let a = Case::new().health(&all_critical).ask("web.service.meridian.", RecordType::SRV, &from);
    assert_eq!(a.rcode, ResponseCode::NoError, "registered but nothing healthy: NODATA");
    assert_soa_only(&a);
    let a = Case::new().ask("web.service.meridian.", RecordType::TXT, &from);
    assert!(a.is_nodata(), "no TXT records");
    assert_soa_only(&a);
}

#[test]
fn nodes_and_addr_names_resolve() {
    let from = at("dc-a", None);
    let a = Case::new().ask("node-a1.node.meridian.", RecordType::A, &from);
    assert_eq!(addresses(&a.answers), ["node-a1.node.meridian. 10.9.0.1"], "node names match case-insensitively");
    let a = Case::new().ask("node-b1.node.dc-b.meridian.", RecordType::A, &from);
    assert_eq!(addresses(&a.answers), ["node-b1.node.dc-b.meridian. 10.9.0.1"]);
    assert!(Case::new().ask("node-a1.node.meridian.", RecordType::AAAA, &from).is_nodata());
    let a = Case::new().ask("0a000102.addr.dc-a.meridian.", RecordType::A, &from);
    assert_eq!(addresses(&a.answers), ["0a000102.addr.dc-a.meridian. 10.0.1.2"]);
    assert!(Case::new().ask("0a000102.addr.dc-a.meridian.", RecordType::AAAA, &from).is_nodata());
}

#[test]
fn the_apex_has_its_soa_and_ns() {
    let mut case = Case::new();
    case.settings.ttl = 30;
    case.settings.ns_addr = Some("127.0.0.1".parse().unwrap());
    let from = at("dc-a", None);
    let a = case.ask("meridian.", RecordType::SOA, &from);
    assert!(matches!(&a.answers[..], [r] if matches!(&r.data, RData::SOA(s)
        if s.mname.to_ascii() == "ns.meridian." && s.rname.to_ascii() == "hostmaster.meridian." && s.minimum == 30)));
    assert_eq!(a.answers[0].ttl, 30);
    let a = case.ask("meridian.", RecordType::NS, &from);
    assert!(matches!(&a.answers[..], [r] if matches!(&r.data, RData::NS(ns) if ns.0.to_ascii() == "ns.meridian.")));
    assert_eq!(addresses(&a.additionals), ["ns.meridian. 127.0.0.1"]);
    let a = case.ask("ns.meridian.", RecordType::A, &from);
    assert_eq!(addresses(&a.answers), ["ns.meridian. 127.0.0.1"]);
    assert!(case.ask("meridian.", RecordType::A, &from).is_nodata());
}

#[test]
fn a_datacenter_that_is_down_has_no_tier() {
    let mut case = Case::new();
    case.surroundings.excluded.insert(DcName::from("dc-b"));
    let a = case.ask("web.service.meridian.", RecordType::SRV, &at("dc-a", Some("z1")));
    assert_eq!(srv(&a), [A1, A2, "3 10 8080 20010db80000000000000000000000c1.addr.dc-c.meridian."]);
}
