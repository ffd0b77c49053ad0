//! Failover group definitions: what parses, what validates, and the message of each way one can be wrong.

use super::*;

fn dcs(names: &[&str]) -> BTreeSet<DcName> {
    names.iter().map(|d| DcName::from(*d)).collect()
}

fn parse(json: &str) -> Result<FailoverGroupSpec, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn a_full_definition_parses_with_its_defaults() {
    let g = parse(
        r#"{"name":"orders","datacenters":["dc-a","dc-b"],
            "hooks":[{"webhook":"http://127.0.0.1:9000/switch"},{"command":["/bin/true","x"],"timeout_ms":250}]}"#,
    )
    .unwrap();
    assert_eq!(g.failback, Failback::Automatic, "failback defaults to automatic");
    assert_eq!(g.hold_ms(5000), 5000, "the hold defaults to the policy's");
    assert_eq!(g.hooks[0].timeout_ms, DEFAULT_HOOK_TIMEOUT_MS);
    let HookTarget::Webhook { url, ca_file: None } = &g.hooks[0].target else { panic!("{:?}", g.hooks[0]) };
    assert_eq!(
        (url.connect_to().as_str(), url.authority(), url.path()),
        ("127.0.0.1:9000", "127.0.0.1:9000", "/switch")
    );
    assert_eq!(g.hooks[1].target, HookTarget::Command(vec!["/bin/true".into(), "x".into()]));
    assert_eq!(g.hooks[1].timeout_ms, 250);
    assert_eq!(g.validate(&dcs(&["dc-a", "dc-b", "dc-c"])), Ok(()));

    // It serialises back to what parses to the same definition (the admin API stores it so).
    let again: FailoverGroupSpec = serde_json::from_slice(&serde_json::to_vec(&g).unwrap()).unwrap();
    assert_eq!(again, g);
}

#[test]
fn hooks_name_exactly_one_callable_target() {
    let cases = [
        (r#"{"webhook":"http://h:1/x","command":["p"]}"#, "either webhook or command, not both"),
        (r#"{"timeout_ms":5}"#, "needs webhook"),
        (r#"{"command":[]}"#, "must name a program"),
        (r#"{"command":[" "]}"#, "must name a program"),
        (r#"{"webhook":"http://h:1/x","ca_file":"/ca.pem"}"#, "ca_file is for https:// webhooks"),
        (r#"{"command":["p"],"ca_file":"/ca.pem"}"#, "ca_file is for https:// webhooks"),
        (r#"{"webhook":"ftp://h/x"}"#, "must start with http:// or https://"),
        (r#"{"webhook":"http://:80/x"}"#, "no host"),
        (r#"{"webhook":"http://h:0/x"}"#, "port must be"),
        (r#"{"webhook":"http://h:1?x"}"#, "path must start with /"),
        (r#"{"command":["p"],"timeout_ms":0}"#, "must be positive"),
        (r#"{"command":["p"],"retries":3}"#, "unknown field"),
    ];
    for (hook, why) in cases {
        let json = format!(r#"{{"name":"g","datacenters":["dc-a"],"hooks":[{hook}]}}"#);
        let err = parse(&json).unwrap_err();
        assert!(err.contains(why), "{hook}: {err}");
    }
}

#[test]
fn a_webhook_without_port_or_path_goes_to_port_80_and_slash() {
    let url = WebhookUrl::parse("http://hooks.internal").unwrap();
    assert_eq!((url.connect_to().as_str(), url.authority(), url.path()), ("hooks.internal:80", "hooks.internal", "/"));
}

#[test]
fn an_https_webhook_goes_to_port_443_and_names_its_host_and_cas() {
    let g = parse(
        r#"{"name":"g","datacenters":["dc-a"],"hooks":[{"webhook":"https://hooks.internal/x","ca_file":"/etc/ca.pem"}]}"#,
    )
    .unwrap();
    let HookTarget::Webhook { url, ca_file } = &g.hooks[0].target else { panic!("{:?}", g.hooks[0]) };
    assert!(url.is_tls());
    assert_eq!(ca_file.as_deref(), Some("/etc/ca.pem"));
    assert_eq!((url.connect_to().as_str(), url.host(), url.path()), ("hooks.internal:443", "hooks.internal", "/x"));
    let again: FailoverGroupSpec = serde_json::from_slice(&serde_json::to_vec(&g).unwrap()).unwrap();
    assert_eq!(again, g);
    let url = WebhookUrl::parse("https://localhost:8443").unwrap();
    assert_eq!(
        (url.connect_to().as_str(), url.host(), url.authority()),
        ("localhost:8443", "localhost", "localhost:8443")
    );
}

#[test]
fn each_invalid_definition_is_refused_with_its_reason() {
    let known = dcs(&["dc-a", "dc-b"]);
    let group = |name: &str, list: &[&str]| FailoverGroupSpec {
        name: GroupName::from(name),
        datacenters: list.iter().map(|d| DcName::from(*d)).collect(),
        failback: Failback::Manual,
        failback_hold_ms: None,
        hooks: Vec::new(),
    };
    let cases = [
        (group("", &["dc-a"]), GroupError::BadName(String::new())),
        (group("a/b", &["dc-a"]), GroupError::BadName("a/b".into())),
        (group(".hidden", &["dc-a"]), GroupError::BadName(".hidden".into())),
        (group("groups", &["dc-a"]), GroupError::BadName("groups".into())),
        (group(&"x".repeat(65), &["dc-a"]), GroupError::BadName("x".repeat(65))),
        (group("g", &[]), GroupError::NoDatacenters("g".into())),
        (
            group("g", &["dc-a", "dc-z"]),
            GroupError::UnknownDc { group: "g".into(), dc: "dc-z".into(), known: "dc-a, dc-b".into() },
        ),
        (group("g", &["dc-a", "dc-a"]), GroupError::DuplicateDc { group: "g".into(), dc: "dc-a".into() }),
    ];
    for (g, want) in cases {
        assert_eq!(g.validate(&known), Err(want), "{g:?}");
    }
    assert_eq!(group("db-1.main_x", &["dc-b", "dc-a"]).validate(&known), Ok(()));
    let twice = [group("g", &["dc-a"]), group("g", &["dc-b"])];
    assert_eq!(validate_groups(&twice, &known), Err(GroupError::Duplicate("g".into())));
    let msg = GroupError::UnknownDc { group: "g".into(), dc: "dc-z".into(), known: "dc-a".into() }.to_string();
    assert!(msg.contains("\"dc-z\", which is not a datacenter of the topology (dc-a)"), "{msg}");
}
