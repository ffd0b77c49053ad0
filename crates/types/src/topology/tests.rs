//! Topology parsing and validation: the canonical example, and one table row per way a file can be wrong.

use super::*;
use crate::TimingPreset;

const EXAMPLE: &str = include_str!("../../../../config/topology.example.toml");

fn member(name: &str, dc: &str, role: Role, port: u16) -> MemberSpec {
    MemberSpec {
        name: MemberName::from(name),
        dc: DcName::from(dc),
        zone: ZoneName::from("z"),
        role,
        peer_url: format!("http://127.0.0.1:{port}"),
        client_url: format!("http://127.0.0.1:{}", port + 1),
        admin_url: None,
    }
}

/// Three voters in three DCs and a learner: valid without force.
fn base() -> Topology {
    Topology {
        members: vec![
            member("a", "dc-a", Role::Voter, 1000),
            member("b", "dc-b", Role::Voter, 1010),
            member("c", "dc-c", Role::Voter, 1020),
            member("l", "dc-d", Role::Learner, 1030),
        ],
        policy: PlacementPolicy { leader_preference: vec![DcName::from("dc-a")], ..Default::default() },
        timing: TimingConfig::default(),
        wan: WanConfig::default(),
        failover_groups: Vec::new(),
    }
}

#[test]
fn canonical_example_parses_and_validates() {
    let topo = Topology::from_toml(EXAMPLE).unwrap();
    assert_eq!(topo.validate(false).unwrap(), Vec::<TopologyWarning>::new());
    let per_dc = |dc: &str| topo.voters().filter(|m| m.dc.0 == dc).count();
    assert_eq!((per_dc("dc-a"), per_dc("dc-b"), per_dc("dc-c")), (2, 2, 1), "voters 2+2+1");
    let learners: Vec<_> = topo.learners().collect();
    assert_eq!(learners.len(), 1);
    assert_eq!(learners[0].dc, DcName::from("dc-d"));
    assert_eq!(topo.policy.leader_preference, vec![DcName::from("dc-a"), DcName::from("dc-b")]);
    assert_eq!(topo.timing.preset, TimingPreset::Lan);
    let rtt = |a: &str, b: &str| topo.wan.links.iter().find(|l| l.from.0 == a && l.to.0 == b).map(|l| l.rtt_ms);
    assert_eq!(rtt("dc-a", "dc-b"), Some(10));
    assert_eq!(rtt("dc-a", "dc-c"), Some(30));
    assert_eq!(rtt("dc-b", "dc-c"), Some(30));
    assert_eq!(rtt("dc-d", "dc-a"), Some(150));
    assert_eq!(topo.member("a1").map(|m| m.admin_url.is_some()), Some(true));
    let groups: Vec<&str> = topo.failover_groups.iter().map(|g| g.name.0.as_str()).collect();
    assert_eq!(groups, ["orders-db", "billing"]);
    let orders = &topo.failover_groups[0];
    assert_eq!(orders.datacenters, [DcName::from("dc-a"), DcName::from("dc-b"), DcName::from("dc-c")]);
    assert_eq!((orders.failback, orders.hold_ms(1), orders.hooks.len()), (crate::Failback::Automatic, 10_000, 1));
    let billing = &topo.failover_groups[1];
    assert_eq!((billing.failback, billing.hold_ms(5000)), (crate::Failback::Manual, 5000), "the policy's hold");
}

#[test]
fn base_is_valid_and_defaults_apply() {
    assert!(base().validate(false).unwrap().is_empty());
    let minimal = "[[members]]\nname = \"x\"\ndc = \"d\"\nzone = \"z\"\npeer_url = \"http://127.0.0.1:1\"\n\
                   client_url = \"http://127.0.0.1:2\"\n";
    let topo = Topology::from_toml(minimal).unwrap();
    assert_eq!(topo.members[0].role, Role::Voter, "role defaults to voter");
    assert_eq!(topo.policy.failback_hold_ms, DEFAULT_FAILBACK_HOLD_MS);
    // A single voter is its own DC's majority: usable only when forced.
    assert!(matches!(topo.validate(false), Err(TopologyError::SingleDcMajority(_))));
    assert_eq!(topo.validate(true).unwrap().len(), 1);
}

#[test]
fn unknown_keys_and_roles_are_parse_errors() {
    let member = "[[members]]\nname=\"x\"\ndc=\"a\"\nzone=\"z\"\npeer_url=\"http://127.0.0.1:1\"\nclient_url=\"http://127.0.0.1:2\"\n";
    let cases = [
        ("unknown top-level key", format!("polcy = 1\n{member}"), "polcy"),
        ("unknown member key", format!("{member}datacenter=\"a\"\n"), "datacenter"),
        ("unknown role", format!("{member}role=\"observer\"\n"), "observer"),
        ("unknown policy key", format!("{member}[policy]\nleader_prefrence = []\n"), "leader_prefrence"),
    ];
    for (what, text, needle) in cases {
        let text = text.as_str();
        match Topology::from_toml(text) {
            Err(TopologyError::Parse(msg)) => assert!(msg.contains(needle), "{what}: {msg}"),
            other => panic!("{what}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn invalid_topologies_name_the_problem() {
    type Edit = fn(&mut Topology);
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("no members", |t| t.members.clear(), "no members"),
        ("duplicate name", |t| t.members[1].name = MemberName::from("a"), "duplicate member name \"a\""),
        (
            "duplicate peer url",
            |t| t.members[1].peer_url = t.members[0].peer_url.clone(),
            "is used twice: by a peer_url and by b peer_url",
        ),
        (
            "duplicate client url",
            |t| t.members[2].client_url = t.members[0].client_url.clone(),
            "by a client_url and by c client_url",
        ),
        (
            "peer url equal to a client url",
            |t| t.members[1].peer_url = t.members[0].client_url.clone(),
            "by a client_url and by b peer_url",
        ),
        ("bad scheme", |t| t.members[0].peer_url = "ftp://127.0.0.1:5".into(), "scheme must be http:// or https://"),
        ("missing port", |t| t.members[0].client_url = "http://127.0.0.1".into(), "missing :PORT"),
        ("bad port", |t| t.members[0].client_url = "http://127.0.0.1:99999".into(), "port must be 1-65535"),
        ("bad admin url", |t| t.members[0].admin_url = Some("127.0.0.1:7".into()), "admin_url"),
        ("empty dc", |t| t.members[0].dc = DcName::from(""), "dc must not be empty"),
        ("no voters", |t| t.members.iter_mut().for_each(|m| m.role = Role::Learner), "no voters"),
        (
            "unknown preferred dc",
            |t| t.policy.leader_preference.push(DcName::from("dc-x")),
            "leader_preference names \"dc-x\"",
        ),
        ("preferred dc twice", |t| t.policy.leader_preference.push(DcName::from("dc-a")), "lists \"dc-a\" twice"),
        ("wan link to unknown dc", |t| t.wan.links.push(link("dc-a", "dc-z")), "names \"dc-z\""),
        (
            "wan loss out of range",
            |t| {
                let mut l = link("dc-a", "dc-b");
                l.loss = 1.5;
                t.wan.links.push(l)
            },
            "loss 1.5",
        ),
        (
            "election not above three heartbeats",
            |t| {
                t.timing.heartbeat_ms = Some(500);
                t.timing.election_ms = Some(1500)
            },
            "must exceed three heartbeats",
        ),
        (
            "failover group naming a dc without members",
            |t| t.failover_groups.push(group("db", &["dc-a", "dc-z"])),
            "failover group \"db\" names datacenter \"dc-z\", which is not a datacenter of the topology",
        ),
        (
            "failover group without datacenters",
            |t| t.failover_groups.push(group("db", &[])),
            "failover group \"db\" lists no datacenters",
        ),
        (
            "failover group defined twice",
            |t| t.failover_groups.extend([group("db", &["dc-a"]), group("db", &["dc-b"])]),
            "failover group \"db\" is defined twice",
        ),
        (
            "one dc holds the majority",
            |t| t.members[1].dc = DcName::from("dc-a"),
            "losing one DC loses the majority: dc-a holds 2 of 3 voters",
        ),
    ];
    for (what, edit, needle) in cases {
        let mut topo = base();
        edit(&mut topo);
        match topo.validate(false) {
            Err(e) => assert!(e.to_string().contains(needle), "{what}: error {e:?} should mention {needle:?}"),
            Ok(w) => panic!("{what}: expected an error, got Ok({w:?})"),
        }
    }
}

#[test]
fn force_turns_the_majority_error_into_a_warning() {
    let mut topo = base();
    topo.members[1].dc = DcName::from("dc-a");
    let warnings = topo.validate(true).unwrap();
    assert_eq!(warnings, vec![TopologyWarning::DcHoldsMajority { dc: "dc-a".into(), voters: 2, total: 3 }]);
    // Other errors stay errors when forced.
    topo.members[2].name = MemberName::from("a");
    assert!(matches!(topo.validate(true), Err(TopologyError::DuplicateName(_))));
}

#[test]
fn preferring_a_learner_only_dc_is_a_warning() {
    let mut topo = base();
    topo.policy.leader_preference = vec![DcName::from("dc-d")];
    assert_eq!(topo.validate(false).unwrap(), vec![TopologyWarning::PreferredDcWithoutVoters("dc-d".into())]);
}

fn group(name: &str, dcs: &[&str]) -> FailoverGroupSpec {
    FailoverGroupSpec {
        name: crate::GroupName::from(name),
        datacenters: dcs.iter().map(|d| DcName::from(*d)).collect(),
        failback: crate::Failback::Automatic,
        failback_hold_ms: None,
        hooks: Vec::new(),
    }
}

#[test]
fn failover_group_hooks_are_checked_as_the_file_parses() {
    let member = "[[members]]\nname=\"x\"\ndc=\"a\"\nzone=\"z\"\npeer_url=\"http://127.0.0.1:1\"\nclient_url=\"http://127.0.0.1:2\"\n";
    let group = "[[failover_groups]]\nname = \"db\"\ndatacenters = [\"a\"]\n[[failover_groups.hooks]]\n";
    let cases = [
        ("both", "webhook = \"http://127.0.0.1:9/x\"\ncommand = [\"p\"]\n", "either webhook or command, not both"),
        ("neither", "timeout_ms = 10\n", "needs webhook"),
        (
            "failback mode",
            "command = [\"p\"]\n[[failover_groups]]\nname=\"e\"\ndatacenters=[\"a\"]\nfailback=\"sometimes\"\n",
            "sometimes",
        ),
    ];
    for (what, hook, needle) in cases {
        match Topology::from_toml(&format!("{member}{group}{hook}")) {
            Err(TopologyError::Parse(msg)) => assert!(msg.contains(needle), "{what}: {msg}"),
            other => panic!("{what}: expected a parse error, got {other:?}"),
        }
    }
}

fn link(from: &str, to: &str) -> crate::wan::LinkSpec {
    crate::wan::LinkSpec {
        from: DcName::from(from),
        to: DcName::from(to),
        rtt_ms: 0,
        loss: 0.0,
        blocked: false,
        symmetric: true,
    }
}
