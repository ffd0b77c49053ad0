//! Typed, validated names: a service, a node, an instance id and a check id, and the references that locate an
//! instance ([`InstanceRef`]) or one of its checks ([`CheckRef`]). Each is a path component of a store key, so
//! none may contain `/`.
//!
//! Rules, and why:
//! - **Service and node names must be DNS labels**: 1 to 63 letters, digits and hyphens, not starting or ending
//!   with a hyphen. Consul accepts other characters and only warns that DNS cannot answer for them; we refuse
//!   them, because a service DNS cannot find is a registration that silently does not work.
//! - **Service names are folded to lower case.** DNS matches names case-insensitively and Consul's catalog
//!   does too, so `Web` and `web` are one service with one key prefix. Node names keep their case.
//! - **Instance and check ids** are 1 to 128 bytes of letters, digits and `-_.:@` (Consul's defaults such as
//!   `service:web-1` fit). They appear in URL paths (`/v1/agent/check/pass/<id>`) and keys, so spaces, `/`,
//!   `?`, `%` and the like are refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shown};

/// The longest instance or check id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Whether `s` is a DNS label: 1 to 63 ASCII letters, digits and hyphens, no hyphen at either end.
pub fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_label(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::Missing { what });
    }
    if !is_dns_label(s) {
        let why = "must be a DNS label: 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen";
        return Err(Error::Invalid { what, value: shown(s), why: why.into() });
    }
    Ok(())
}

fn id_text(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::Missing { what });
    }
    if s.len() > MAX_ID_LEN {
        return Err(Error::TooLong { what, len: s.len(), max: MAX_ID_LEN });
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:@".contains(*c))) {
        let why = format!("{c:?} is not allowed (letters, digits and -_.:@ only)");
        return Err(Error::Invalid { what, value: shown(s), why });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s` (see the module docs for the rule).
            pub fn new(s: impl Into<String>) -> Result<$name> {
                let f: fn(String) -> Result<String> = $check;
                f(s.into()).map($name)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<$name> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

name_type!(
    /// A service's name: a DNS label, folded to lower case.
    ServiceName,
    |s| {
        dns_label("service name", &s)?;
        Ok(s.to_ascii_lowercase())
    }
);

name_type!(
    /// The name of the node an instance is registered on (Consul's `Node`): a DNS label, case kept.
    NodeName,
    |s| dns_label("node name", &s).map(|()| s)
);

name_type!(
    /// An instance's id (Consul's service `ID`), unique among the instances of its service on its node.
    InstanceId,
    |s| id_text("instance id", &s).map(|()| s)
);

name_type!(
    /// A check's id (Consul's `CheckID`), unique among the checks of its instance.
    CheckId,
    |s| id_text("check id", &s).map(|()| s)
);

/// Where an instance lives: its service, its node and its id. Consul's identity of a service instance is
/// (node, service id); the service name in front groups the keys of one service under one prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceRef {
    /// The service.
    pub service: ServiceName,
    /// The node it is registered on.
    pub node: NodeName,
    /// Its id.
    pub id: InstanceId,
}

/// One check of one instance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckRef {
    /// The instance.
    pub instance: InstanceRef,
    /// The check's id.
    pub check: CheckId,
}

impl fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.service, self.node, self.id)
    }
}

impl fmt::Display for CheckRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_dns_labels_folded_to_lower_case() {
        let ok = [("web", "web"), ("Web-API", "web-api"), ("a", "a"), ("9lives", "9lives")];
        for (input, want) in ok {
            assert_eq!(ServiceName::new(input).unwrap().as_str(), want);
        }
        let long = "a".repeat(64);
        let bad = ["", "-web", "web-", "my_svc", "web.api", "web/api", "wéb", long.as_str()];
        for input in bad {
            assert!(ServiceName::new(input).is_err(), "{input:?} accepted");
        }
        assert!(ServiceName::new("").unwrap_err().message().contains("service name is missing"));
        assert!(ServiceName::new("my_svc").unwrap_err().message().contains("DNS label"));
    }

    #[test]
    fn node_names_keep_their_case() {
        assert_eq!(NodeName::new("Node-1").unwrap().as_str(), "Node-1");
        assert!(NodeName::new("node 1").is_err());
    }

    #[test]
    fn ids_allow_consul_defaults_and_refuse_path_characters() {
        for ok in ["web-1", "service:web-1", "service:web:2", "redis@10.0.0.1:6379", "A_b.C"] {
            assert!(InstanceId::new(ok).is_ok() && CheckId::new(ok).is_ok(), "{ok:?} refused");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in ["", "a/b", "a b", "a?b", "50%", long.as_str()] {
            assert!(InstanceId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CheckId::new("a/b").unwrap_err().message().contains("'/' is not allowed"));
    }

    #[test]
    fn names_deserialize_through_validation() {
        let ok: ServiceName = serde_json::from_str("\"Web\"").unwrap();
        assert_eq!(ok.as_str(), "web");
        assert!(serde_json::from_str::<ServiceName>("\"we b\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"web\"");
    }
}
