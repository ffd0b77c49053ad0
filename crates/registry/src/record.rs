//! The JSON records the registry keeps in the store (see [`crate::keys`] for where): a [`Registration`] (an
//! instance with its check definitions) and a [`CheckRecord`] (one check's published state). Decoding
//! re-validates everything and checks that a registration sits under its own key, so a record that does not
//! make sense is an error, never a panic or a silently wrong answer.

use serde::{Deserialize, Serialize};

use crate::check::{CheckDef, validate_checks};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::keys::instance_key;
use crate::name::{CheckId, CheckRef};
use crate::status::Status;
use crate::time::Timestamp;

/// An instance and its checks: what `/meridian/services/<service>/<node>/<id>` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The instance.
    pub instance: Instance,
    /// Its checks; none means it is always passing (as in Consul).
    #[serde(default)]
    pub checks: Vec<CheckDef>,
}

impl Registration {
    /// Checks the instance and its checks.
    pub fn validate(&self) -> Result<()> {
        self.instance.validate()?;
        validate_checks(&self.checks)
    }

    /// The key it is stored under.
    pub fn key(&self) -> String {
        instance_key(&self.instance.reference())
    }

    /// One of its checks' reference.
    pub fn check_ref(&self, check: &CheckId) -> CheckRef {
        CheckRef { instance: self.instance.reference(), check: check.clone() }
    }

    /// The record each check starts with (its initial status, since `now`), to write with the registration.
    pub fn initial_records(&self, now: Timestamp) -> Vec<(CheckRef, CheckRecord)> {
        let record = |def: &CheckDef| CheckRecord { status: def.initial, output: String::new(), since: now };
        self.checks.iter().map(|def| (self.check_ref(&def.id), record(def))).collect()
    }

    /// The JSON stored in the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a registration always serializes")
    }

    /// Reads the registration stored under `key`, validated and checked to belong there.
    pub fn decode(key: &str, value: &[u8]) -> Result<Registration> {
        let reg: Registration =
            serde_json::from_slice(value).map_err(|source| Error::BadRecord { key: key.to_string(), source })?;
        reg.validate()?;
        if reg.key() != key {
            return Err(Error::KeyMismatch { key: key.to_string(), found: reg.key() });
        }
        Ok(reg)
    }
}

/// One check's published state: what `/meridian/health/<service>/<node>/<id>/<check>` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Its status.
    pub status: Status,
    /// The output of the result that set it (an HTTP body, an error, a TTL report's note).
    #[serde(default)]
    pub output: String,
    /// When it entered this status.
    pub since: Timestamp,
}

impl CheckRecord {
    /// The JSON stored in the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a check record always serializes")
    }

    /// Reads the record stored under `key`.
    pub fn decode(key: &str, value: &[u8]) -> Result<CheckRecord> {
        serde_json::from_slice(value).map_err(|source| Error::BadRecord { key: key.to_string(), source })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::{CheckKind, TtlCheck};

    fn registration() -> Registration {
        let ttl = CheckKind::Ttl(TtlCheck { ttl: Duration::from_secs(30) });
        Registration {
            instance: crate::instance::tests::web("web-1", "dc-a", Some("z1")),
            checks: vec![crate::check::tests::def("service:web-1", ttl)],
        }
    }

    #[test]
    fn registrations_round_trip_under_their_key() {
        let reg = registration();
        let key = reg.key();
        assert_eq!(key, "/meridian/services/web/node-1/web-1");
        assert_eq!(Registration::decode(&key, &reg.encode()).unwrap(), reg);
    }

    #[test]
    fn a_registration_under_another_key_or_invalid_is_refused() {
        let reg = registration();
        let moved = Registration::decode("/meridian/services/web/node-2/web-1", &reg.encode()).unwrap_err();
        assert!(matches!(moved, Error::KeyMismatch { .. }), "{moved:?}");
        let mut bad = reg.clone();
        bad.instance.address = "not an address".into();
        assert!(Registration::decode(&reg.key(), &bad.encode()).is_err());
        let garbage = Registration::decode(&reg.key(), b"{nope").unwrap_err();
        assert!(garbage.message().contains("is not valid JSON"), "{}", garbage.message());
    }

    #[test]
    fn initial_records_start_in_the_initial_status() {
        let mut reg = registration();
        reg.checks[0].initial = Status::Passing;
        let records = reg.initial_records(Timestamp(7));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0.to_string(), "web/node-1/web-1/service:web-1");
        assert_eq!(records[0].1, CheckRecord { status: Status::Passing, output: String::new(), since: Timestamp(7) });
    }

    #[test]
    fn check_records_round_trip_and_read_as_json() {
        let rec = CheckRecord { status: Status::Warning, output: "slow".into(), since: Timestamp(1_700) };
        let json: serde_json::Value = serde_json::from_slice(&rec.encode()).unwrap();
        assert_eq!(json, serde_json::json!({"status": "warning", "output": "slow", "since": 1700}));
        assert_eq!(CheckRecord::decode("k", &rec.encode()).unwrap(), rec);
        assert!(CheckRecord::decode("k", br#"{"status":"meh","since":1}"#).is_err());
    }
}
