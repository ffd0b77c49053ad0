//! The model out, in the JSON shapes Consul's clients read.

use serde_json::json;

use super::ctx;
use crate::consul::{CheckStates, Indexes, agent_check, agent_service, catalog_service, health_entry, parse_register};
use crate::record::{CheckRecord, Registration};
use crate::status::Status;
use crate::time::Timestamp;

fn registration() -> Registration {
    let b = serde_json::to_vec(&json!({
        "ID": "web-1", "Name": "web", "Address": "10.0.0.5", "Port": 8080, "Tags": ["v1"],
        "Meta": {"version": "1.2"}, "Weights": {"Passing": 5, "Warning": 1},
        "Checks": [
            {"CheckID": "http", "Name": "HTTP health", "HTTP": "http://10.0.0.5:8080/health", "Interval": "10s", "Timeout": "1s"},
            {"CheckID": "ttl", "Name": "heartbeat", "TTL": "30s", "Notes": "pushed by the app"}
        ]
    }))
    .unwrap();
    parse_register(&b, &ctx()).unwrap()
}

fn states() -> CheckStates {
    let record = CheckRecord { status: Status::Warning, output: "HTTP GET ...: 429".into(), since: Timestamp(5) };
    CheckStates::from([(registration().checks[0].id.clone(), (record, Indexes { create: 12, modify: 40 }))])
}

#[test]
fn health_service_entries_have_consuls_shape() {
    let reg = registration();
    let entry = health_entry(&reg, Indexes { create: 10, modify: 11 }, &states());
    let want = json!({
        "Node": {
            "ID": "", "Node": "a1", "Address": "10.0.0.1", "Datacenter": "dc-a",
            "TaggedAddresses": {}, "Meta": {}, "CreateIndex": 10, "ModifyIndex": 11
        },
        "Service": {
            "ID": "web-1", "Service": "web", "Tags": ["v1"], "Address": "10.0.0.5", "Meta": {"version": "1.2"},
            "Port": 8080, "Weights": {"Passing": 5, "Warning": 1}, "EnableTagOverride": false,
            "CreateIndex": 10, "ModifyIndex": 11
        },
        "Checks": [
            {
                "Node": "a1", "CheckID": "http", "Name": "HTTP health", "Status": "warning", "Notes": "",
                "Output": "HTTP GET ...: 429", "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"],
                "Type": "http", "Interval": "10s", "Timeout": "1s", "CreateIndex": 12, "ModifyIndex": 40
            },
            {
                "Node": "a1", "CheckID": "ttl", "Name": "heartbeat", "Status": "critical", "Notes": "pushed by the app",
                "Output": "", "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"],
                "Type": "ttl", "Interval": "", "Timeout": "", "CreateIndex": 10, "ModifyIndex": 11
            }
        ]
    });
    assert_eq!(serde_json::to_value(&entry).unwrap(), want);
}

#[test]
fn catalog_and_agent_shapes() {
    let reg = registration();
    let catalog = serde_json::to_value(catalog_service(&reg.instance, Indexes { create: 3, modify: 4 })).unwrap();
    assert_eq!(
        catalog,
        json!({
            "ID": "", "Node": "a1", "Address": "10.0.0.1", "Datacenter": "dc-a", "TaggedAddresses": {},
            "NodeMeta": {}, "ServiceKind": "", "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"],
            "ServiceAddress": "10.0.0.5", "ServiceWeights": {"Passing": 5, "Warning": 1},
            "ServiceMeta": {"version": "1.2"}, "ServicePort": 8080, "ServiceEnableTagOverride": false,
            "CreateIndex": 3, "ModifyIndex": 4
        })
    );
    let agent = serde_json::to_value(agent_service(&reg.instance)).unwrap();
    assert_eq!(
        agent,
        json!({
            "ID": "web-1", "Service": "web", "Tags": ["v1"], "Meta": {"version": "1.2"}, "Port": 8080,
            "Address": "10.0.0.5", "Weights": {"Passing": 5, "Warning": 1}, "EnableTagOverride": false,
            "Datacenter": "dc-a"
        })
    );
    let states = states();
    let check =
        serde_json::to_value(agent_check(&reg.instance, &reg.checks[0], states.get(&reg.checks[0].id))).unwrap();
    assert_eq!(check["Status"], "warning");
    assert!(check.get("CreateIndex").is_none(), "the agent endpoint has no indexes: {check}");
}
