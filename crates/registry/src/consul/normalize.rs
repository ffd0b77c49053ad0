//! Case-insensitive keys, as Consul matches them. python3-consul sends `name`, `port`, `check`; Go clients
//! send `Name`; hand-written JSON sends `deregister_critical_service_after`. Before deserialising, every key
//! of a known object is rewritten to its canonical spelling when it matches one ignoring case, `_` and `-`.
//!
//! Consul does this recursively through nested structures (a registration's `Check`, `Checks[]`, `Weights`)
//! but not inside free-form maps, whose keys are data (`Meta`, a check's `Header`): those keep their case.
//! Keys that match nothing are kept as they are and ignored later. Two keys matching the same canonical one
//! (`Name` and `name`) are an error rather than a silent choice.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How a field's value is treated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// A scalar or a list of scalars: left alone.
    Plain,
    /// A free-form map: its keys are data and keep their case.
    Opaque,
    /// A nested object with its own canonical keys.
    Object(&'static [Field]),
    /// A list of such objects.
    Array(&'static [Field]),
}

/// A canonical key and the shape of its value.
pub(crate) type Field = (&'static str, Shape);

use Shape::{Array, Object, Opaque, Plain};

/// A registration's `Weights`.
pub(crate) const WEIGHTS: &[Field] = &[("Passing", Plain), ("Warning", Plain)];

/// A check definition (inside a registration, or the body of `/v1/agent/check/register`).
pub(crate) const CHECK: &[Field] = &[
    ("CheckID", Plain),
    ("ID", Plain),
    ("Name", Plain),
    ("Notes", Plain),
    ("Status", Plain),
    ("ServiceID", Plain),
    ("Type", Plain),
    ("Interval", Plain),
    ("Timeout", Plain),
    ("TTL", Plain),
    ("HTTP", Plain),
    ("Method", Plain),
    ("Header", Opaque),
    ("Body", Plain),
    ("TLSSkipVerify", Plain),
    ("TLSServerName", Plain),
    ("DisableRedirects", Plain),
    ("TCP", Plain),
    ("GRPC", Plain),
    ("GRPCUseTLS", Plain),
    ("SuccessBeforePassing", Plain),
    ("FailuresBeforeWarning", Plain),
    ("FailuresBeforeCritical", Plain),
    ("DeregisterCriticalServiceAfter", Plain),
    ("OutputMaxSize", Plain),
    // Types we refuse, recognised so that the error can name them.
    ("Args", Plain),
    ("ScriptArgs", Plain),
    ("Script", Plain),
    ("Shell", Plain),
    ("DockerContainerID", Plain),
    ("H2PING", Plain),
    ("UDP", Plain),
    ("OSService", Plain),
    ("AliasNode", Plain),
    ("AliasService", Plain),
];

/// The body of `/v1/agent/service/register`.
pub(crate) const SERVICE: &[Field] = &[
    ("ID", Plain),
    ("Name", Plain),
    ("Kind", Plain),
    ("Tags", Plain),
    ("Address", Plain),
    ("Port", Plain),
    ("Meta", Opaque),
    ("TaggedAddresses", Opaque),
    ("Weights", Object(WEIGHTS)),
    ("EnableTagOverride", Plain),
    ("Check", Object(CHECK)),
    ("Checks", Array(CHECK)),
];

/// A key as compared: ASCII lower case, without `_` and `-`.
fn fold(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

/// Rewrites the keys of `value` (an object of `schema`) to their canonical spelling, recursively.
pub(crate) fn normalize(value: Value, schema: &'static [Field]) -> Result<Value> {
    let Value::Object(map) = value else { return Ok(value) };
    let mut out = Map::new();
    for (key, value) in map {
        let folded = fold(&key);
        let Some((canonical, shape)) = schema.iter().find(|(name, _)| fold(name) == folded) else {
            out.insert(key, value);
            continue;
        };
        if out.contains_key(*canonical) {
            return Err(Error::DuplicateKey { key: (*canonical).to_owned() });
        }
        let value = match (shape, value) {
            (Object(inner), v) => normalize(v, inner).map_err(|e| e.in_field(*canonical))?,
            (Array(inner), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(n, v)| normalize(v, inner).map_err(|e| e.in_field(format!("{canonical}[{n}]"))))
                    .collect::<Result<_>>()?,
            ),
            (_, v) => v,
        };
        out.insert((*canonical).to_owned(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_take_their_canonical_spelling_at_every_level() {
        let input = json!({
            "name": "web",
            "PORT": 80,
            "weights": {"passing": 3},
            "check": {"http": "http://h/", "interval": "10s", "deregister_critical_service_after": "1m"},
            "checks": [{"ttl": "30s", "check_id": "t"}, {"tcp": "h:1", "Tls_Skip_Verify": true}],
            "unknown_thing": 1,
        });
        let want = json!({
            "Name": "web",
            "Port": 80,
            "Weights": {"Passing": 3},
            "Check": {"HTTP": "http://h/", "Interval": "10s", "DeregisterCriticalServiceAfter": "1m"},
            "Checks": [{"TTL": "30s", "CheckID": "t"}, {"TCP": "h:1", "TLSSkipVerify": true}],
            "unknown_thing": 1,
        });
        assert_eq!(normalize(input, SERVICE).unwrap(), want);
    }

    #[test]
    fn free_form_maps_keep_their_keys() {
        let input = json!({"meta": {"Version": "1", "env": "prod"}, "check": {"header": {"X-Token": ["a"]}}});
        let want = json!({"Meta": {"Version": "1", "env": "prod"}, "Check": {"Header": {"X-Token": ["a"]}}});
        assert_eq!(normalize(input, SERVICE).unwrap(), want);
    }

    #[test]
    fn the_same_key_twice_is_an_error_naming_where() {
        let e = normalize(json!({"Name": "a", "name": "b"}), SERVICE).unwrap_err();
        assert!(matches!(e, Error::DuplicateKey { ref key } if key == "Name"), "{e:?}");
        let e = normalize(json!({"checks": [{}, {"TTL": "1s", "ttl": "2s"}]}), SERVICE).unwrap_err();
        assert_eq!(e.message(), "in Checks[1]: key \"TTL\" is given twice (keys are matched case-insensitively)");
    }

    #[test]
    fn id_and_check_id_stay_distinct() {
        let got = normalize(json!({"id": "a", "checkid": "b"}), CHECK).unwrap();
        assert_eq!(got, json!({"ID": "a", "CheckID": "b"}));
    }
}
