//! The admin router against a real single-member node, driven with `tower::ServiceExt::oneshot` (no network).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use meridian_proto::etcdserverpb::PutRequest;
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_types::DcName;
use tower::ServiceExt;

use super::*;
use crate::config::ServerConfig;
use crate::fault::{Faults, LinkSpec, Verdict, WanConfig};
use crate::run::RunningServer;

struct Fixture {
    server: Option<RunningServer>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            name: "a1".into(),
            data_dir: dir.path().join("data"),
            listen_client: "http://127.0.0.1:0".into(),
            listen_peer: "http://127.0.0.1:0".into(),
            dc: DcName::from("dc-a"),
            zone: "a-1".into(),
            ..Default::default()
        };
        let server = crate::start(config).await.unwrap();
        let fixture = Fixture { server: Some(server), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fixture.server().member.raft().status().is_leader {
            assert!(Instant::now() < deadline, "single member never became leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fixture
    }

    fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    fn state(&self, fault_injection: bool) -> AdminState {
        let s = self.server();
        AdminState::open(s.member.clone(), fault_injection.then(|| s.faults.clone()))
    }

    async fn stop(mut self) {
        self.server.take().unwrap().stop().await.unwrap();
    }
}

async fn call(state: AdminState, method: &str, path: &str, body: &str) -> (StatusCode, String, String) {
    let req = Request::builder().method(method).uri(path).body(Body::from(body.to_owned())).unwrap();
    let resp = router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn status(state: AdminState) -> StatusReport {
    let (code, _, body) = call(state, "GET", "/status", "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn status_shows_identity_leader_progress_and_placement_reason() {
    let f = Fixture::start().await;
    let before = status(f.state(false)).await;
    assert_eq!((before.name.as_str(), before.dc.as_str(), before.zone.as_str()), ("a1", "dc-a", "a-1"));
    assert_eq!(before.role, "voter");
    assert!(before.is_leader);
    let leader = before.leader.clone().expect("leader known");
    assert_eq!((leader.id.as_str(), leader.name.as_str(), leader.dc.as_str()), (before.id.as_str(), "a1", "dc-a"));
    assert_eq!(before.leader_reason, f.server().member.placement().reason(), "the placement driver's reason is shown");
    assert!(!before.leader_reason.is_empty());
    assert!(before.term >= 1);
    // A lone member probes no one.
    assert!(before.reachability.is_empty(), "{:?}", before.reachability);
    assert_eq!(before.members.len(), 1);
    let me = &before.members[0];
    assert_eq!((me.name.as_str(), me.role.as_str(), me.lag), ("a1", "voter", Some(0)));
    assert_eq!(me.matched, Some(before.last_log_index));

    let put = PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() };
    f.server()
        .member
        .propose(RaftCommand { auth: None, cmd: Some(Cmd::Put(put)), ..Default::default() })
        .await
        .unwrap();
    let after = status(f.state(false)).await;
    assert_eq!(after.revision, before.revision + 1, "the put is visible in the revision");
    assert!(after.applied > before.applied && after.committed >= after.applied);
    assert_eq!(after.leader_reason, f.server().member.placement().reason());
    // A verdict in the store is shown as recorded.
    let record = meridian_failover::VerdictRecord {
        dc: meridian_types::DcName("dc-z".into()),
        state: meridian_failover::DcState::Partitioned,
        since: meridian_failover::rfc3339(1_000),
        since_unix_ms: 1_000,
        term: 4,
        evidence: Vec::new(),
    };
    let put = PutRequest { key: b"/meridian/dc/dc-z".to_vec(), value: record.to_json(), ..Default::default() };
    f.server()
        .member
        .propose(RaftCommand { auth: None, cmd: Some(Cmd::Put(put)), ..Default::default() })
        .await
        .unwrap();
    let shown = &status(f.state(false)).await.verdicts["dc-z"];
    assert_eq!((shown.state.as_str(), shown.since.as_str(), shown.term), ("partitioned", "1970-01-01T00:00:01Z", 4));
    f.stop().await;
}

#[tokio::test]
async fn health_and_metrics_reflect_the_leader() {
    let f = Fixture::start().await;
    let (code, _, body) = call(f.state(false), "GET", "/health", "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, r#"{"health":"true","reason":""}"#);

    // The one watcher is the member's own: the discovery catalog following the registry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.server().member.hub().watcher_count() != 1 {
        assert!(Instant::now() < deadline, "the discovery catalog never watched the registry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = status(f.state(false)).await;
    let (code, ctype, text) = call(f.state(false), "GET", "/metrics", "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    for line in [
        format!("meridian_raft_term {}", report.term),
        "meridian_is_leader 1".to_owned(),
        "meridian_has_leader 1".to_owned(),
        format!("meridian_mvcc_revision {}", report.revision),
        // The member's own service catalog follows the registry through one watch (`discovery::follow`).
        "meridian_watchers 1".to_owned(),
        "meridian_fault_injection_enabled 0".to_owned(),
        "meridian_follower_lag_entries{member=\"a1\",dc=\"dc-a\"} 0".to_owned(),
        "# TYPE meridian_raft_applied_index gauge".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    f.stop().await;
}

#[test]
fn health_without_a_leader_is_503_like_etcd() {
    let (code, body) = status::health(None);
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"health":"false","reason":"RAFT NO LEADER"}"#);
    assert_eq!(status::health(Some(meridian_types::NodeId(1))).0, StatusCode::OK);
}

#[test]
fn metric_label_values_are_escaped() {
    let mut report = StatusReport {
        id: "1".into(),
        name: "n".into(),
        dc: "d".into(),
        zone: "z".into(),
        role: "voter".into(),
        is_leader: true,
        leader: None,
        leader_reason: String::new(),
        term: 3,
        last_log_index: 9,
        committed: 9,
        applied: 9,
        revision: 5,
        watchers: 2,
        members: Vec::new(),
        verdicts: Default::default(),
        groups: Default::default(),
        reachability: Vec::new(),
        db_size: 1 << 20,
        free_disk: Some(1 << 30),
        alarms: Vec::new(),
        auth: AuthSummary { enabled: false, revision: 1, hash: 0 },
        certificates: Vec::new(),
        insecure_allow_remote: false,
    };
    report.members.push(MemberStatus {
        id: "2".into(),
        name: "we\"ird\\".into(),
        dc: "dc-b".into(),
        zone: "z".into(),
        role: "voter".into(),
        peer_url: String::new(),
        client_url: String::new(),
        matched: Some(4),
        lag: Some(5),
    });
    report
        .verdicts
        .insert("dc-b".into(), status::VerdictSummary { state: "down".into(), since: String::new(), term: 3 });
    report.reachability.push(status::ReachSummary {
        member: "b1".into(),
        dc: "dc-b".into(),
        reachable: false,
        silent_ms: 4000,
        rtt_ms: Some(2),
    });
    report.groups.insert("db".into(), status::GroupSummary { dc: "dc-a".into(), token: 41 });
    let text = metrics::render(&report, true);
    assert!(text.contains("meridian_dc_state{dc=\"dc-b\",state=\"down\"} 3\n"), "{text}");
    assert!(text.contains("meridian_failover_group_active{group=\"db\",dc=\"dc-a\"} 1\n"), "{text}");
    assert!(text.contains("meridian_failover_group_token{group=\"db\"} 41\n"), "{text}");
    assert!(text.contains("meridian_peer_reachable{member=\"b1\",dc=\"dc-b\"} 0\n"), "{text}");
    assert!(text.contains("meridian_peer_rtt_ms{member=\"b1\",dc=\"dc-b\"} 2\n"), "{text}");
    assert!(text.contains("meridian_follower_lag_entries{member=\"we\\\"ird\\\\\",dc=\"dc-b\"} 5"), "{text}");
    assert!(text.contains("meridian_watchers 2\n"));
    assert!(text.contains("meridian_fault_injection_enabled 1\n"));
}

#[tokio::test]
async fn fault_routes_do_not_exist_without_the_flag() {
    let f = Fixture::start().await;
    assert_eq!(call(f.state(false), "GET", "/faults", "").await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(f.state(false), "PUT", "/faults", r#"{"isolated_dcs":["dc-b"]}"#).await.0, StatusCode::NOT_FOUND);
    assert_eq!(f.server().faults.get(), Faults::default(), "nothing changed");
    f.stop().await;
}

#[tokio::test]
async fn faults_are_read_and_replaced_at_runtime() {
    let f = Fixture::start().await;
    let (code, _, body) = call(f.state(true), "GET", "/faults", "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(serde_json::from_str::<FaultSpec>(&body).unwrap(), FaultSpec::default());

    let put = r#"{
        "links": [{"from": "dc-a", "to": "dc-b", "rtt_ms": 10},
                  {"from": "dc-a", "to": "dc-c", "rtt_ms": 30, "blocked": true, "symmetric": false}],
        "isolated_members": ["a1", "1f"],
        "isolated_dcs": ["dc-d"]
    }"#;
    let (code, _, body) = call(f.state(true), "PUT", "/faults", put).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let echoed: FaultSpec = serde_json::from_str(&body).unwrap();
    let mut names = echoed.isolated_members.clone();
    names.sort();
    assert_eq!(names, vec!["1f".to_owned(), "a1".to_owned()], "members are shown by name where known");
    let faults = f.server().faults.get();
    let me = f.server().member.id();
    assert!(faults.isolated_members.contains(&me), "a name resolves to its member id");
    assert!(faults.isolated_members.contains(&meridian_types::NodeId(0x1f)), "a hex id is taken as is");
    assert_eq!(faults.isolated_dcs.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), vec!["dc-d"]);
    let (a, b, c) = (DcName::from("dc-a"), DcName::from("dc-b"), DcName::from("dc-c"));
    let (x, y) = (meridian_types::NodeId(100), meridian_types::NodeId(200));
    assert_eq!(faults.decide(&a, &b, x, y, 0.5), Verdict::Deliver { delay: Duration::from_millis(5) });
    assert_eq!(faults.decide(&a, &c, x, y, 0.5), Verdict::Block);
    assert_eq!(faults.decide(&c, &a, x, y, 0.5), Verdict::Deliver { delay: Duration::ZERO }, "one-way cut");
    let (_, _, body) = call(f.state(true), "GET", "/faults", "").await;
    assert_eq!(serde_json::from_str::<FaultSpec>(&body).unwrap(), echoed, "GET shows what PUT installed");

    // Healing is a PUT of the links alone.
    let heal = FaultSpec { links: vec![LinkSpec { blocked: false, ..echoed.links[1].clone() }], ..Default::default() };
    let (code, _, _) = call(f.state(true), "PUT", "/faults", &serde_json::to_string(&heal).unwrap()).await;
    assert_eq!(code, StatusCode::OK);
    let healed = f.server().faults.get();
    assert!(healed.isolated_members.is_empty() && healed.isolated_dcs.is_empty());
    assert_eq!(healed.wan, WanConfig { links: heal.links.clone() });
    f.stop().await;
}

#[tokio::test]
async fn bad_fault_descriptions_are_400_and_change_nothing() {
    let f = Fixture::start().await;
    let cases = [
        ("{not json", "invalid fault description"),
        (r#"{"linkz": []}"#, "unknown field `linkz`"),
        (r#"{"links": [{"from": "dc-a", "to": "dc-b", "loss": 2.0}]}"#, "loss 2 must be between 0 and 1"),
        (r#"{"isolated_members": ["nobody"]}"#, "\"nobody\" is neither a member name nor a hex member id"),
    ];
    for (body, want) in cases {
        let (code, ctype, text) = call(f.state(true), "PUT", "/faults", body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        let err: serde_json::Value = serde_json::from_str(&text).unwrap();
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
        assert_eq!(f.server().faults.get(), Faults::default(), "{body} changed the faults");
    }
    f.stop().await;
}

async fn call_as(state: AdminState, method: &str, path: &str, body: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(axum::http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = router(state).oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let code = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (code, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn a_token_guards_the_admin_api_except_health_and_metrics() {
    let f = Fixture::start().await;
    let guarded = |open_health_metrics: bool| AdminState {
        authorizer: Some(Arc::new(TokenAuthorizer::new(Some("tok".into())))),
        open_health_metrics,
        insecure_allow_remote: true,
        ..f.state(true)
    };
    let (code, body) = call_as(guarded(true), "GET", "/status", "", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body.contains("\"error\":\"missing admin token"), "{body}");
    let (code, body) = call_as(guarded(true), "GET", "/status", "", Some("tok2")).await;
    assert_eq!((code, body.as_str()), (StatusCode::UNAUTHORIZED, r#"{"error":"invalid admin token"}"#));
    let (code, body) = call_as(guarded(true), "GET", "/status", "", Some("tok")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let report: StatusReport = serde_json::from_str(&body).unwrap();
    assert!(report.insecure_allow_remote, "shown in /status");
    assert!(report.certificates.is_empty(), "no TLS, no certificates");
    // Fault injection needs the token too.
    let heal = r#"{"links":[]}"#;
    assert_eq!(call_as(guarded(true), "PUT", "/faults", heal, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call_as(guarded(true), "PUT", "/faults", heal, Some("tok")).await.0, StatusCode::OK);
    for path in ["/health", "/metrics"] {
        assert_eq!(call_as(guarded(true), "GET", path, "", None).await.0, StatusCode::OK, "{path} open");
        assert_eq!(call_as(guarded(false), "GET", path, "", None).await.0, StatusCode::UNAUTHORIZED, "{path} closed");
        assert_eq!(call_as(guarded(false), "GET", path, "", Some("tok")).await.0, StatusCode::OK);
    }
    // Without an authorizer the API stays open (a loopback listener without TLS or token).
    assert_eq!(call_as(f.state(false), "GET", "/status", "", None).await.0, StatusCode::OK);
    f.stop().await;
}

#[test]
fn the_default_authorizer_accepts_only_the_configured_token() {
    let auth = TokenAuthorizer::new(Some("secret".into()));
    assert!(auth.is_admin("secret"));
    assert!(!auth.is_admin("secre") && !auth.is_admin("secret2") && !auth.is_admin(""));
    assert!(!TokenAuthorizer::new(None).is_admin(""), "no token configured: nobody");
}
