//! Instance validation: one table of registrations, each breaking one rule, and the message it must give.

use super::*;

pub(crate) fn web(id: &str, dc: &str, zone: Option<&str>) -> Instance {
    Instance {
        service: ServiceName::new("web").unwrap(),
        id: InstanceId::new(id).unwrap(),
        node: NodeName::new("node-1").unwrap(),
        node_address: "10.0.0.1".into(),
        address: "10.0.0.10".into(),
        port: 8080,
        tags: vec!["v1".into()],
        meta: BTreeMap::from([("version".into(), "1.2".into())]),
        dc: DcName::from(dc),
        zone: zone.map(ZoneName::from),
        weights: Weights::default(),
        lease: None,
    }
}

#[test]
fn a_plain_instance_is_valid_and_weights_default_to_consuls() {
    let i = web("web-1", "dc-a", Some("z1"));
    i.validate().unwrap();
    assert_eq!(i.weights, Weights { passing: 1, warning: 1 });
    assert_eq!(i.reference().to_string(), "web/node-1/web-1");
}

#[test]
fn each_broken_rule_is_refused_with_its_reason() {
    type Breaker = fn(&mut Instance);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        ("empty address", |i| i.address.clear(), "address is missing"),
        ("address with a space", |i| i.address = "10.0.0.1 x".into(), "IP address or a host name"),
        ("bad node address", |i| i.node_address = "a_b".into(), "node address"),
        ("port 0", |i| i.port = 0, "port 0 is out of range"),
        ("65 tags", |i| i.tags = (0..65).map(|n| format!("t{n}")).collect(), "65 tags given, at most 64"),
        ("empty tag", |i| i.tags = vec![String::new()], "tag text is missing"),
        ("long tag", |i| i.tags = vec!["x".repeat(256)], "tag is 256 bytes long, at most 255"),
        ("tag with a newline", |i| i.tags = vec!["a\nb".into()], "control characters"),
        (
            "65 meta keys",
            |i| i.meta = (0..65).map(|n| (format!("k{n}"), String::new())).collect(),
            "65 meta keys given, at most 64",
        ),
        ("long meta key", |i| i.meta = BTreeMap::from([("k".repeat(129), String::new())]), "meta key is 129 bytes"),
        ("meta key with a dot", |i| i.meta = BTreeMap::from([("a.b".into(), String::new())]), "'_' and '-' only"),
        ("reserved meta key", |i| i.meta = BTreeMap::from([("consul-x".into(), String::new())]), "reserved"),
        ("long meta value", |i| i.meta = BTreeMap::from([("k".into(), "v".repeat(513))]), "meta value is 513 bytes"),
        ("zero passing weight", |i| i.weights.passing = 0, "passing weight"),
        ("empty dc", |i| i.dc = DcName::default(), "datacenter is missing"),
        ("zone with a dot", |i| i.zone = Some(ZoneName::from("z.1")), "invalid zone"),
    ];
    for (name, brk, want) in cases {
        let mut i = web("web-1", "dc-a", Some("z1"));
        brk(&mut i);
        let msg = i.validate().expect_err(name).message();
        assert!(msg.contains(want), "{name}: {msg}");
    }
}

#[test]
fn limits_themselves_are_allowed() {
    let mut i = web("web-1", "dc-a", None);
    i.tags = (0..MAX_TAGS).map(|n| format!("t{n}")).collect();
    i.meta = (0..MAX_META).map(|n| (format!("k{n}"), "v".repeat(MAX_META_VALUE_LEN))).collect();
    i.weights = Weights { passing: 65535, warning: 0 };
    i.validate().unwrap();
    for addr in ["::1", "fe80::1", "db.internal", "db.internal.", "192.168.1.1"] {
        validate_address("address", addr).unwrap_or_else(|e| panic!("{addr}: {}", e.message()));
    }
}

#[test]
fn tag_filters_need_every_tag() {
    let mut i = web("web-1", "dc-a", None);
    i.tags = vec!["v1".into(), "blue".into()];
    assert!(i.has_tags(&[]));
    assert!(i.has_tags(&["blue".into(), "v1".into()]));
    assert!(!i.has_tags(&["blue".into(), "v2".into()]));
}
