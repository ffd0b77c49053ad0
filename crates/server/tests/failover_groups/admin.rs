//! The admin API's failover endpoints: manual switches through the log with tokens, definitions, the report,
//! and a clear error for each kind of bad request. Hooks here are recorded, not run.

use std::sync::Arc;

use meridian_failover::DcState;
use meridian_server::failover_groups::{ActiveView, FailoverReport, RecordingHooks, Source};

use crate::harness::{Fixture, http, now_ms};

const GROUP: &str = "[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\", \"dc-c\"]\n\
                     [[failover_groups.hooks]]\ncommand = [\"/bin/true\"]\n";

async fn report(f: &Fixture) -> FailoverReport {
    let (code, body) = http(f.admin(), "GET", "/failover", "").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `(status, error text)` of a request that must fail.
async fn refused(f: &Fixture, method: &str, path: &str, body: &str) -> (u16, String) {
    let (code, text) = http(f.admin(), method, path, body).await;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (code, json["error"].as_str().unwrap_or_else(|| panic!("no error in {text}")).to_owned())
}

#[tokio::test]
async fn promote_and_demote_switch_through_the_log_and_hooks_hear_of_it() {
    let hooks = RecordingHooks::new();
    let f = Fixture::start(100, GROUP, Arc::new(hooks.clone())).await;
    let (_, t1) = f.wait_active("db", "dc-a", None).await;

    let (code, body) = http(f.admin(), "POST", "/failover/db/promote", r#"{"dc": "dc-c"}"#).await;
    assert_eq!(code, 200, "{body}");
    let promoted: ActiveView = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (promoted.dc.0.as_str(), promoted.previous.as_ref().map(|d| d.0.as_str()), promoted.manual),
        ("dc-c", Some("dc-a"), true)
    );
    assert!(promoted.token > t1.0);
    let (stored, t2) = f.active("db").unwrap();
    assert_eq!(
        (stored.dc.0.as_str(), t2.0, stored.manual),
        ("dc-c", promoted.token, true),
        "the answer is what the store holds"
    );

    // The report shows it; the hooks hear of the new token.
    f.wait_acknowledged("db", t2).await;
    assert!(hooks.calls().iter().any(|c| c.call.token == t2.0 && c.call.dc.0 == "dc-c"), "{:?}", hooks.calls());
    let r = report(&f).await;
    let db = &r.groups[0];
    assert_eq!((db.name.0.as_str(), db.source, db.failback_hold_ms), ("db", Source::Topology, 100));
    assert_eq!(db.active.as_ref().map(|a| (a.dc.0.as_str(), a.token)), Some(("dc-c", t2.0)));
    assert!(db.pending_hooks.is_empty(), "{db:?}");

    // Demote wraps round from the last datacenter to the first.
    let (code, body) = http(f.admin(), "POST", "/failover/db/demote", "").await;
    assert_eq!(code, 200, "{body}");
    let demoted: ActiveView = serde_json::from_str(&body).unwrap();
    assert_eq!((demoted.dc.0.as_str(), demoted.manual), ("dc-a", true));
    assert!(demoted.token > t2.0);

    // Demote skips a down datacenter.
    f.verdict("dc-b", DcState::Down, now_ms(&f)).await;
    let (code, body) = http(f.admin(), "POST", "/failover/db/demote", "{}").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<ActiveView>(&body).unwrap().dc.0, "dc-c");
    f.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let f = Fixture::start(100, GROUP, Arc::new(RecordingHooks::new())).await;
    f.wait_active("db", "dc-a", None).await;
    f.verdict("dc-b", DcState::Down, now_ms(&f)).await;
    let cases = [
        ("POST", "/failover/nope/promote", r#"{"dc": "dc-b"}"#, 404, "no failover group \"nope\""),
        ("POST", "/failover/nope/demote", "", 404, "no failover group \"nope\""),
        (
            "POST",
            "/failover/db/promote",
            r#"{"dc": "dc-z"}"#,
            400,
            "datacenter \"dc-z\" is not in failover group \"db\"",
        ),
        ("POST", "/failover/db/promote", r#"{"dc": "dc-b"}"#, 409, "dc-b is down"),
        ("POST", "/failover/db/promote", r#"{"dc": "dc-a"}"#, 409, "dc-a is already the active datacenter"),
        ("POST", "/failover/db/promote", "{", 400, "invalid promote body"),
        ("POST", "/failover/db/promote", r#"{"datacenter": "dc-c"}"#, 400, "invalid promote body"),
        (
            "PUT",
            "/failover/groups/web",
            r#"{"datacenters": ["dc-z"]}"#,
            400,
            "names datacenter \"dc-z\", which is not a datacenter of the topology",
        ),
        ("PUT", "/failover/groups/web", r#"{"datacenters": []}"#, 400, "lists no datacenters"),
        (
            "PUT",
            "/failover/groups/web",
            r#"{"name": "api", "datacenters": ["dc-a"]}"#,
            400,
            "the body names group \"api\"",
        ),
        ("PUT", "/failover/groups/web", r#"{"datacenters": ["dc-a"], "hooks": [{}]}"#, 400, "needs webhook"),
        ("PUT", "/failover/groups/web", "[1]", 400, "expected a JSON object"),
        ("PUT", "/failover/groups/web", "{", 400, "invalid failover group definition"),
        ("PUT", "/failover/groups/a%2Fb", r#"{"datacenters": ["dc-a"]}"#, 400, "is not valid"),
        ("DELETE", "/failover/groups/db", "", 409, "defined in the topology file"),
        ("DELETE", "/failover/groups/nope", "", 404, "no failover group \"nope\""),
    ];
    for (method, path, body, code, text) in cases {
        let (got_code, got) = refused(&f, method, path, body).await;
        assert_eq!(got_code, code, "{method} {path} {body}: {got}");
        assert!(got.contains(text), "{method} {path} {body}: {got}");
    }
    assert_eq!(f.active("db").unwrap().0.dc.0, "dc-a", "no refused request moved the group");
    f.stop().await;
}

#[tokio::test]
async fn groups_defined_through_the_api_run_and_can_be_removed() {
    let f = Fixture::start(100, GROUP, Arc::new(RecordingHooks::new())).await;
    let (code, body) = http(f.admin(), "PUT", "/failover/groups/web", r#"{"datacenters": ["dc-c", "dc-a"]}"#).await;
    assert_eq!(code, 200, "{body}");
    let (web, _) = f.wait_active("web", "dc-c", None).await;
    assert!(!web.manual);
    let r = report(&f).await;
    let names: Vec<(&str, Source)> = r.groups.iter().map(|g| (g.name.0.as_str(), g.source)).collect();
    assert_eq!(names, [("db", Source::Topology), ("web", Source::Api)]);

    // Overriding the topology's group keeps its record; removing the override too.
    let (code, body) =
        http(f.admin(), "PUT", "/failover/groups/db", r#"{"datacenters": ["dc-a", "dc-c"], "failback": "manual"}"#)
            .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(report(&f).await.groups[0].source, Source::Api);
    let (code, body) = http(f.admin(), "DELETE", "/failover/groups/db", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(report(&f).await.groups[0].source, Source::Topology);
    assert!(f.active("db").is_some(), "the topology's group keeps its active record");

    // Removing an API-only group removes its record with it.
    let (code, body) = http(f.admin(), "DELETE", "/failover/groups/web", "").await;
    assert_eq!(code, 200, "{body}");
    assert!(f.active("web").is_none());
    assert_eq!(report(&f).await.groups.len(), 1);
    f.stop().await;
}
