//! Tables of `meridian service` answers, read from the API's JSON (so the CLI does not depend on the server's
//! types): the services with their tags, the instances of a service with their checks, and the ranked answer
//! tier by tier.

use std::fmt::Write as _;

use serde_json::Value;

/// `/v1/catalog/services`: one line per service with its tags.
pub fn services(json: &Value) -> String {
    let mut out = String::from("SERVICE  TAGS\n");
    for (name, tags) in json.as_object().into_iter().flatten() {
        let tags: Vec<&str> = tags.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let _ = writeln!(out, "{name}  {}", tags.join(","));
    }
    out
}

/// The worst status among Consul check entries (`passing` without checks).
fn worst(checks: &[Value]) -> &str {
    let rank = |s: &str| match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    };
    checks.iter().filter_map(|c| c["Status"].as_str()).max_by_key(|s| rank(s)).unwrap_or("passing")
}

/// `/v1/health/service/<svc>`: one line per instance, in the answer's order (nearest first).
pub fn health(json: &Value) -> String {
    let mut out = String::from("ID  ADDRESS  DC  NODE  HEALTH  CHECKS\n");
    for entry in json.as_array().into_iter().flatten() {
        let service = &entry["Service"];
        let checks: Vec<Value> = entry["Checks"].as_array().cloned().unwrap_or_default();
        let detail: Vec<String> = checks
            .iter()
            .map(|c| format!("{}={}", c["CheckID"].as_str().unwrap_or("?"), c["Status"].as_str().unwrap_or("?")))
            .collect();
        let _ = writeln!(
            out,
            "{}  {}:{}  {}  {}  {}  {}",
            service["ID"].as_str().unwrap_or("?"),
            service["Address"].as_str().unwrap_or("?"),
            service["Port"],
            entry["Node"]["Datacenter"].as_str().unwrap_or("?"),
            entry["Node"]["Node"].as_str().unwrap_or("?"),
            worst(&checks),
            detail.join(","),
        );
    }
    out
}

/// A tier's scope as text: `zone z1 of dc-a`, `dc-a outside zone z1`, `dc-a`, `dc-b (rtt 40 ms)`.
fn scope(s: &Value) -> String {
    let dc = s["dc"].as_str().unwrap_or("?");
    match s["kind"].as_str() {
        Some("zone") => format!("zone {} of {dc}", s["zone"].as_str().unwrap_or("?")),
        Some("dc") if s["except_zone"].is_string() => {
            format!("{dc} outside zone {}", s["except_zone"].as_str().unwrap_or("?"))
        }
        Some("remote_dc") => match s["rtt_ms"].as_u64() {
            Some(rtt) => format!("{dc} (rtt {rtt} ms)"),
            None => format!("{dc} (rtt unknown)"),
        },
        _ => dc.to_owned(),
    }
}

/// Why a tier is where it is, as text.
fn reason(r: &Value) -> String {
    match r["kind"].as_str() {
        Some("failover") => format!("failover: {}", r["why"].as_str().unwrap_or("?")),
        Some("below_threshold") => format!("below threshold ({} of {} healthy)", r["healthy"], r["threshold"]),
        Some(other) => other.replace('_', " "),
        None => "?".to_owned(),
    }
}

/// `/v1/query/<svc>`: each tier with its reason and instances; the primary tier is marked.
pub fn query(json: &Value) -> String {
    let ranked = if json.get("tiers").is_some() { json } else { &json["ranked"] };
    let primary = ranked["primary"].as_u64();
    let mut out = String::new();
    if primary.is_none() {
        out.push_str("no healthy instance in any tier\n");
    }
    for (n, tier) in ranked["tiers"].as_array().into_iter().flatten().enumerate() {
        let mark = if primary == Some(n as u64) { "  <- primary" } else { "" };
        let _ = writeln!(
            out,
            "tier {}: {} — {}, {} healthy{mark}",
            n + 1,
            scope(&tier["scope"]),
            reason(&tier["reason"]),
            tier["healthy"]
        );
        for entry in tier["instances"].as_array().into_iter().flatten() {
            let i = &entry["instance"];
            let _ = writeln!(
                out,
                "  {}  {}:{}  {}  weight {}",
                i["id"].as_str().unwrap_or("?"),
                i["address"].as_str().unwrap_or("?"),
                i["port"],
                entry["health"].as_str().unwrap_or("?"),
                entry["weight"]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_lines_show_the_worst_check() {
        let answer = json!([{
            "Node": {"Node": "a1", "Datacenter": "dc-a"},
            "Service": {"ID": "web-1", "Address": "127.0.0.1", "Port": 8080},
            "Checks": [{"CheckID": "http", "Status": "passing"}, {"CheckID": "ttl", "Status": "warning"}]
        }]);
        let text = health(&answer);
        assert!(text.contains("web-1  127.0.0.1:8080  dc-a  a1  warning  http=passing,ttl=warning"), "{text}");
        assert_eq!(worst(&[]), "passing");
    }

    #[test]
    fn query_tiers_show_scope_reason_and_the_primary() {
        let answer = json!({"index": 7, "ranked": {
            "primary": 1,
            "tiers": [
                {"scope": {"kind": "dc", "dc": "dc-a"}, "reason": {"kind": "below_threshold", "healthy": 0, "threshold": 1},
                 "healthy": 0, "instances": []},
                {"scope": {"kind": "remote_dc", "dc": "dc-b", "rtt_ms": 40},
                 "reason": {"kind": "failover", "why": "0 healthy in dc-a (threshold 1)"}, "healthy": 1,
                 "instances": [{"instance": {"id": "web-2", "address": "10.0.0.2", "port": 80}, "health": "passing", "weight": 1}]}
            ]
        }});
        let text = query(&answer);
        assert!(text.contains("tier 1: dc-a — below threshold (0 of 1 healthy), 0 healthy\n"), "{text}");
        assert!(
            text.contains(
                "tier 2: dc-b (rtt 40 ms) — failover: 0 healthy in dc-a (threshold 1), 1 healthy  <- primary"
            ),
            "{text}"
        );
        assert!(text.contains("  web-2  10.0.0.2:80  passing  weight 1"), "{text}");
        assert!(query(&json!({"tiers": [], "primary": null})).contains("no healthy instance"));
        assert_eq!(scope(&json!({"kind": "dc", "dc": "dc-a", "except_zone": "z1"})), "dc-a outside zone z1");
    }

    #[test]
    fn services_list_tags() {
        assert_eq!(services(&json!({"web": ["v1", "blue"], "db": []})), "SERVICE  TAGS\ndb  \nweb  v1,blue\n");
    }
}
