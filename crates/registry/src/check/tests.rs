//! Check definitions: validation tables and the judging of probe results.

use super::*;

pub(crate) const S10: Schedule = Schedule { interval: Duration::from_secs(10), timeout: Duration::from_secs(2) };

pub(crate) fn def(id: &str, kind: CheckKind) -> CheckDef {
    CheckDef {
        id: CheckId::new(id).unwrap(),
        name: format!("check {id}"),
        notes: String::new(),
        kind,
        initial: Status::Critical,
        thresholds: Thresholds::default(),
        deregister_critical_after: None,
    }
}

fn http(url: &str) -> HttpCheck {
    HttpCheck::get(url, S10)
}

#[test]
fn valid_definitions_of_every_kind() {
    let get = http("http://h/");
    assert_eq!((get.method.as_str(), get.follow_redirects, get.output_max), ("GET", false, DEFAULT_OUTPUT_MAX));
    let kinds = [
        CheckKind::Http(http("http://10.0.0.1:8080/health")),
        CheckKind::Http(http("HTTPS://web.internal/health")),
        CheckKind::Tcp(TcpCheck { target: "10.0.0.1:5432".into(), schedule: S10 }),
        CheckKind::Tcp(TcpCheck { target: "[::1]:5432".into(), schedule: S10 }),
        CheckKind::Grpc(GrpcCheck {
            target: "db.internal:9090".into(),
            service: Some("db.v1.Db".into()),
            tls: true,
            tls_skip_verify: false,
            schedule: S10,
        }),
        CheckKind::Ttl(TtlCheck { ttl: Duration::from_secs(30) }),
    ];
    for kind in kinds {
        def("c", kind.clone()).validate().unwrap_or_else(|e| panic!("{kind:?}: {}", e.message()));
    }
}

#[test]
fn broken_definitions_are_refused_with_their_reason() {
    let mut headers = http("http://h/");
    headers.headers.insert("X-Evil".into(), vec!["a\r\nInjected: 1".into()]);
    let mut bad_header_name = http("http://h/");
    bad_header_name.headers.insert("X Evil".into(), vec![]);
    let mut method = http("http://h/");
    method.method = "get".into();
    let mut cap = http("http://h/");
    cap.output_max = MAX_OUTPUT_MAX + 1;
    let short = Schedule { interval: Duration::from_millis(500), timeout: Duration::from_millis(100) };
    let long_timeout = Schedule { interval: Duration::from_secs(5), timeout: Duration::from_secs(6) };
    let cases: Vec<(CheckKind, &str)> = vec![
        (CheckKind::Http(http("ftp://h/")), "must start with http://"),
        (CheckKind::Http(http("http:///path")), "needs a host"),
        (CheckKind::Http(http("http://h/a b")), "needs a host and no spaces"),
        (CheckKind::Http(headers), "line breaks"),
        (CheckKind::Http(bad_header_name), "HTTP token"),
        (CheckKind::Http(method), "upper-case"),
        (CheckKind::Http(cap), "OutputMaxSize"),
        (CheckKind::Http(HttpCheck::get("http://h/", short)), "interval 500ms is below the minimum of 1s"),
        (CheckKind::Http(HttpCheck::get("http://h/", long_timeout)), "at most the interval (5s)"),
        (CheckKind::Tcp(TcpCheck { target: "10.0.0.1".into(), schedule: S10 }), "host:port"),
        (CheckKind::Tcp(TcpCheck { target: "10.0.0.1:0".into(), schedule: S10 }), "port 0"),
        (CheckKind::Tcp(TcpCheck { target: "10.0.0.1:70000".into(), schedule: S10 }), "port 70000"),
        (CheckKind::Tcp(TcpCheck { target: "a b:80".into(), schedule: S10 }), "target host"),
        (CheckKind::Ttl(TtlCheck { ttl: Duration::from_millis(10) }), "TTL 10ms is below"),
    ];
    for (kind, want) in cases {
        let msg = def("c", kind.clone()).validate().expect_err(want).message();
        assert!(msg.contains(want), "{kind:?}: {msg}");
    }
    let mut d = def("c", CheckKind::Ttl(TtlCheck { ttl: Duration::from_secs(5) }));
    d.deregister_critical_after = Some(Duration::from_millis(1));
    assert!(d.validate().unwrap_err().message().contains("deregister_critical_service_after"));
    d.deregister_critical_after = None;
    d.name.clear();
    assert!(d.validate().unwrap_err().message().contains("check name is missing"));
}

#[test]
fn an_instance_has_unique_check_ids_and_a_bounded_count() {
    let ttl = CheckKind::Ttl(TtlCheck { ttl: Duration::from_secs(5) });
    validate_checks(&[def("a", ttl.clone()), def("b", ttl.clone())]).unwrap();
    let dup = validate_checks(&[def("a", ttl.clone()), def("a", ttl.clone())]).unwrap_err();
    assert!(matches!(dup, Error::DuplicateCheck(ref id) if id == "a"), "{dup:?}");
    let many: Vec<_> = (0..=MAX_CHECKS).map(|n| def(&format!("c{n}"), ttl.clone())).collect();
    assert!(matches!(validate_checks(&many), Err(Error::TooMany { count: 33, .. })));
    let mut bad = def("x", ttl);
    bad.name.clear();
    assert!(validate_checks(&[bad]).unwrap_err().message().starts_with("in check x: check name is missing"));
}

#[test]
fn http_results_are_judged_as_consul_does() {
    let c = http("http://h/health");
    let cases = [
        (200, Outcome::Pass),
        (204, Outcome::Pass),
        (299, Outcome::Pass),
        (429, Outcome::Warn),
        (301, Outcome::Fail),
        (302, Outcome::Fail),
        (404, Outcome::Fail),
        (500, Outcome::Fail),
        (503, Outcome::Fail),
        (100, Outcome::Fail),
    ];
    for (code, want) in cases {
        assert_eq!(c.judge(code, b"ok").0, want, "HTTP {code}");
    }
    let (_, output) = c.judge(200, b"all good");
    assert_eq!(output, "HTTP GET http://h/health: 200 Output: all good");
    assert_eq!(c.judge_error("connection refused").0, Outcome::Fail);
}

#[test]
fn http_output_is_capped() {
    let mut c = http("http://h/");
    c.output_max = 4;
    let (_, output) = c.judge(200, b"abcdefgh");
    assert!(output.ends_with("Output: abcd"), "{output}");
    let (_, output) = c.judge(200, "ééé".as_bytes());
    assert!(output.ends_with("Output: éé"), "a cut never splits a character: {output}");
}

#[test]
fn tcp_and_grpc_results_are_judged() {
    let tcp = TcpCheck { target: "h:1".into(), schedule: S10 };
    assert_eq!(tcp.judge(Ok(())), (Outcome::Pass, "TCP connect h:1: Success".into()));
    assert_eq!(tcp.judge(Err("refused")).0, Outcome::Fail);
    let grpc = GrpcCheck { target: "h:1".into(), service: None, tls: false, tls_skip_verify: false, schedule: S10 };
    let cases = [(0, Outcome::Fail), (1, Outcome::Pass), (2, Outcome::Fail), (3, Outcome::Fail), (9, Outcome::Fail)];
    for (wire, want) in cases {
        assert_eq!(grpc.judge(Ok(GrpcServing::from_wire(wire))).0, want, "status {wire}");
    }
    assert_eq!(grpc.judge(Err("unavailable")).0, Outcome::Fail);
}

#[test]
fn definitions_round_trip_through_json_with_consul_durations() {
    let mut d = def("c", CheckKind::Http(http("http://h/")));
    d.deregister_critical_after = Some(Duration::from_secs(90));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["kind"]["type"], "http");
    assert_eq!(json["kind"]["schedule"]["interval"], "10s");
    assert_eq!(json["deregister_critical_after"], "1m30s");
    let back: CheckDef = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}
