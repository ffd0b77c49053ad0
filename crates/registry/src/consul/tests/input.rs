//! Registration bodies in, the model out; and every bad body refused with the message a 400 should carry.

use std::time::Duration;

use meridian_types::{LeaseId, ZoneName};
use serde_json::json;

use super::ctx;
use crate::check::{CheckKind, Outcome, Thresholds};
use crate::consul::{MAX_BODY_BYTES, parse_check_register, parse_check_update, parse_register};
use crate::status::Status;

fn body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn python_consul_lower_case_registration() {
    let b = body(json!({
        "name": "web", "id": "web-1", "address": "10.0.0.5", "port": 8080, "tags": ["v1", "blue"],
        "check": {"http": "http://10.0.0.5:8080/health", "interval": "10s", "timeout": "2s"}
    }));
    let reg = parse_register(&b, &ctx()).unwrap();
    let i = &reg.instance;
    assert_eq!((i.service.as_str(), i.id.as_str(), i.node.as_str()), ("web", "web-1", "a1"));
    assert_eq!((i.address.as_str(), i.port, i.tags.clone()), ("10.0.0.5", 8080, vec!["v1".into(), "blue".into()]));
    assert_eq!((i.dc.0.as_str(), i.zone.clone()), ("dc-a", Some(ZoneName::from("z1"))));
    assert_eq!(reg.checks.len(), 1);
    let c = &reg.checks[0];
    assert_eq!((c.id.as_str(), c.name.as_str(), c.initial), ("service:web-1", "Service 'web' check", Status::Critical));
    let CheckKind::Http(h) = &c.kind else { panic!("{:?}", c.kind) };
    assert_eq!((h.url.as_str(), h.method.as_str()), ("http://10.0.0.5:8080/health", "GET"));
    assert_eq!((h.schedule.interval, h.schedule.timeout), (Duration::from_secs(10), Duration::from_secs(2)));
    assert!(!h.follow_redirects, "redirects are not followed unless asked");
    assert_eq!(h.output_max, 4096);
}

#[test]
fn go_client_registration_with_several_checks() {
    let b = body(json!({
        "ID": "api-1", "Name": "API", "Tags": ["primary"], "Address": "", "Port": 9000,
        "Meta": {"version": "2.1", "meridian-zone": "z2"},
        "Weights": {"Passing": 10, "Warning": 1},
        "Checks": [
            {"Name": "heartbeat", "TTL": "30s", "Status": "passing", "DeregisterCriticalServiceAfter": "90s"},
            {"CheckID": "tcp", "TCP": "10.0.0.9:9000", "Interval": "5s"},
            {"GRPC": "10.0.0.9:9001/api.v1.Health", "GRPCUseTLS": true, "Interval": "15s",
             "SuccessBeforePassing": 2, "FailuresBeforeCritical": 3}
        ]
    }));
    let mut context = ctx();
    context.lease = Some(LeaseId(77));
    let reg = parse_register(&b, &context).unwrap();
    let i = &reg.instance;
    assert_eq!((i.service.as_str(), i.id.as_str()), ("api", "api-1"), "the service name is folded, the id kept");
    assert_eq!(i.address, "10.0.0.1", "an empty address is the node's");
    assert_eq!(i.zone, Some(ZoneName::from("z2")), "the meta key sets the zone");
    assert_eq!((i.weights.passing, i.weights.warning, i.lease), (10, 1, Some(LeaseId(77))));
    let ids: Vec<&str> = reg.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["service:api-1:1", "tcp", "service:api-1:3"]);
    assert_eq!(reg.checks[0].kind.ttl(), Some(Duration::from_secs(30)));
    assert_eq!(
        (reg.checks[0].initial, reg.checks[0].deregister_critical_after),
        (Status::Passing, Some(Duration::from_secs(90)))
    );
    assert_eq!(
        reg.checks[1].kind.schedule().unwrap().timeout,
        Duration::from_secs(5),
        "timeout defaults to the interval"
    );
    let CheckKind::Grpc(g) = &reg.checks[2].kind else { panic!("{:?}", reg.checks[2].kind) };
    assert_eq!((g.target.as_str(), g.service.as_deref(), g.tls), ("10.0.0.9:9001", Some("api.v1.Health"), true));
    assert_eq!(reg.checks[2].thresholds, Thresholds::from_consul(2, None, 3));
    assert_eq!(reg.checks[2].kind.schedule().unwrap().timeout, Duration::from_secs(10));
}

#[test]
fn snake_case_keys_and_a_single_check() {
    let b = body(json!({
        "Name": "db", "Port": 5432,
        "check": {"tcp": "db.internal:5432", "interval": "10s", "deregister_critical_service_after": "1m",
                  "failures_before_critical": 3, "failures_before_warning": 1}
    }));
    let reg = parse_register(&b, &ctx()).unwrap();
    assert_eq!(reg.instance.id.as_str(), "db", "the id defaults to the name");
    assert_eq!(reg.checks[0].id.as_str(), "service:db");
    assert_eq!(reg.checks[0].thresholds, Thresholds::from_consul(0, Some(1), 3));
    assert_eq!(reg.checks[0].deregister_critical_after, Some(Duration::from_secs(60)));
}

#[test]
fn redirects_are_followed_only_on_an_explicit_false() {
    for (value, follow) in [(None, false), (Some(false), true), (Some(true), false)] {
        let mut check = json!({"HTTP": "http://h/", "Interval": "10s"});
        if let Some(v) = value {
            check["DisableRedirects"] = json!(v);
        }
        let reg = parse_register(&body(json!({"Name": "web", "Port": 1, "Check": check})), &ctx()).unwrap();
        let CheckKind::Http(h) = &reg.checks[0].kind else { panic!() };
        assert_eq!(h.follow_redirects, follow, "DisableRedirects {value:?}");
    }
}

#[test]
fn bad_registrations_are_refused_with_a_message() {
    let tags: Vec<String> = (0..65).map(|n| format!("t{n}")).collect();
    let check = |c: serde_json::Value| json!({"name": "web", "port": 1, "check": c});
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({"port": 80}), "service name (Name) is missing"),
        (json!({"name": "web"}), "port (Port) is missing"),
        (json!({"name": "web", "port": 0}), "port 0 is out of range"),
        (json!({"name": "web", "port": 70000}), "port 70000 is out of range"),
        (json!({"name": "web", "port": -1}), "port -1 is out of range"),
        (json!({"name": "web", "port": "80"}), "service registration is not valid JSON of the expected shape"),
        (json!({"name": "web_x", "port": 1}), "must be a DNS label"),
        (json!({"name": "web", "Name": "x", "port": 1}), "key \"Name\" is given twice"),
        (json!({"name": "web", "port": 1, "tags": tags}), "65 tags given, at most 64"),
        (json!({"name": "web", "port": 1, "kind": "connect-proxy"}), "only plain services"),
        (json!({"name": "web", "port": 1, "weights": {"passing": 0}}), "Weights.Passing"),
        (check(json!({"args": ["/bin/true"], "interval": "10s"})), "in Check: unsupported check type \"script\""),
        (check(json!({"Script": "rm -rf /", "interval": "10s"})), "unsupported check type \"script\""),
        (check(json!({"DockerContainerID": "c1", "interval": "10s"})), "unsupported check type \"docker\""),
        (check(json!({"type": "h2ping"})), "unsupported check type \"h2ping\""),
        (check(json!({"interval": "10s"})), "in Check: check defines no type"),
        (check(json!({"http": "http://h/", "tcp": "h:1", "interval": "10s"})), "several types (http, tcp)"),
        (check(json!({"http": "http://h/"})), "in Check: Interval is missing"),
        (
            check(json!({"http": "http://h/", "interval": "10"})),
            "in Check: in Interval: invalid duration \"10\": missing unit",
        ),
        (check(json!({"http": "http://h/", "interval": "500ms"})), "interval 500ms is below the minimum of 1s"),
        (check(json!({"ttl": "10s", "type": "http"})), "invalid check Type \"http\": the definition is a ttl check"),
        (check(json!({"type": "ttl"})), "TTL is missing"),
        (check(json!({"ttl": "10s", "status": "maintenance"})), "invalid check status"),
        (check(json!({"ttl": "10s", "id": "a/b"})), "invalid check id"),
        (
            json!({"name": "web", "port": 1, "checks": [{"ttl": "10s"}, {"udp": "h:1", "interval": "10s"}]}),
            "in Checks[1]: unsupported check type \"udp\"",
        ),
        (
            json!({"name": "web", "port": 1, "checks": [{"ttl": "10s", "id": "x"}, {"ttl": "5s", "id": "x"}]}),
            "check id \"x\" is used twice",
        ),
    ];
    for (input, want) in cases {
        let msg = parse_register(&body(input.clone()), &ctx()).expect_err(want).message();
        assert!(msg.contains(want), "{input}: {msg}");
    }
}

#[test]
fn malformed_or_huge_bodies_are_refused_before_anything_else() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), "service registration is not valid JSON"),
        (b"[]".to_vec(), "must be a JSON object"),
        (vec![b' '; MAX_BODY_BYTES + 1], "request body is 524289 bytes long"),
    ];
    for (input, want) in cases {
        let msg = parse_register(&input, &ctx()).unwrap_err().message();
        assert!(msg.contains(want), "{msg}");
    }
    let mut nowhere = ctx();
    nowhere.node_address.clear();
    let msg = parse_register(&body(json!({"Name": "web", "Port": 1})), &nowhere).unwrap_err().message();
    assert_eq!(msg, "address is missing", "no address and no node address");
}

#[test]
fn check_registration_and_update_bodies() {
    let (service, def) =
        parse_check_register(&body(json!({"Name": "mem", "ServiceID": "web-1", "TTL": "15s"}))).unwrap();
    assert_eq!(
        (service.unwrap().as_str(), def.id.as_str(), def.kind.ttl()),
        ("web-1", "mem", Some(Duration::from_secs(15)))
    );
    let (service, def) = parse_check_register(&body(json!({"name": "disk", "check_id": "d1", "ttl": "1m"}))).unwrap();
    assert_eq!((service, def.id.as_str()), (None, "d1"));
    assert!(
        parse_check_register(&body(json!({"TTL": "15s"})))
            .unwrap_err()
            .message()
            .contains("check name (Name) is missing")
    );
    assert!(parse_check_register(&body(json!({"Name": "x", "Args": ["sh"]}))).is_err());

    let cases = [
        (json!({"Status": "warning", "Output": "slow"}), Outcome::Warn, "slow"),
        (json!({"status": "passing"}), Outcome::Pass, ""),
        (json!({"STATUS": "critical", "output": "down"}), Outcome::Fail, "down"),
    ];
    for (input, outcome, output) in cases {
        assert_eq!(parse_check_update(&body(input)).unwrap(), (outcome, output.to_owned()));
    }
    assert!(parse_check_update(&body(json!({"Status": "meh"}))).is_err());
    assert!(parse_check_update(&body(json!({}))).unwrap_err().message().contains("Status"));
}
