//! The records the leader writes under the reserved prefix, as clients read them: a datacenter's verdict at
//! `/meridian/dc/<dc>` (JSON with `state`, `since`, `term` and `evidence`).

use meridian_types::DcName;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the cluster has decided about one datacenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DcState {
    /// Every member of it is reachable from every reporting member outside it.
    Up,
    /// Some of its members are unreachable, but the datacenter as a whole answers.
    Degraded,
    /// Reachable from some datacenters but not from others: a cut link, not a dead datacenter.
    Partitioned,
    /// No member of it is reachable from any reporting member outside it, confirmed by a majority of the
    /// voters outside it for the detection window.
    Down,
}

impl DcState {
    /// The lowercase name used in JSON, metrics and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DcState::Up => "up",
            DcState::Degraded => "degraded",
            DcState::Partitioned => "partitioned",
            DcState::Down => "down",
        }
    }

    /// A number for the `meridian_dc_state` gauge: 0 up, 1 degraded, 2 partitioned, 3 down.
    pub fn gauge(self) -> u8 {
        match self {
            DcState::Up => 0,
            DcState::Degraded => 1,
            DcState::Partitioned => 2,
            DcState::Down => 3,
        }
    }
}

/// One reporter's view of the datacenter, as recorded with a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The reporting member's name.
    pub reporter: String,
    /// The reporting member's datacenter.
    pub reporter_dc: DcName,
    /// Whether the reporter is a voter (only voters confirm `down`).
    pub voter: bool,
    /// Members of the datacenter the reporter reached within their probe timeout.
    pub reached: Vec<String>,
    /// Members of the datacenter the reporter could not reach.
    pub unreachable: Vec<String>,
    /// How old the report was when the verdict was decided, in milliseconds.
    pub age_ms: u64,
}

/// A datacenter's verdict, the value of `/meridian/dc/<dc>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// The datacenter.
    pub dc: DcName,
    /// The verdict.
    pub state: DcState,
    /// When the datacenter entered this state, RFC 3339 in UTC.
    pub since: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// The Raft term of the leader that decided it.
    pub term: u64,
    /// What each reporter outside the datacenter saw when the verdict was decided.
    pub evidence: Vec<Evidence>,
}

impl VerdictRecord {
    /// Parses the value stored under `key`.
    pub fn parse(key: &str, value: &[u8]) -> Result<VerdictRecord> {
        serde_json::from_slice(value).map_err(|source| Error::BadRecord { key: key.to_string(), source })
    }

    /// The JSON stored in the key.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a verdict record always serialises")
    }
}

/// Formats milliseconds since the Unix epoch as RFC 3339 in UTC (`2026-12-06T08:00:00.123Z`).
pub fn rfc3339(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix_ms}ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_round_trips_through_its_json() {
        let record = VerdictRecord {
            dc: DcName("dc-a".into()),
            state: DcState::Down,
            since: rfc3339(1_796_544_000_123),
            since_unix_ms: 1_796_544_000_123,
            term: 7,
            evidence: vec![Evidence {
                reporter: "b1".into(),
                reporter_dc: DcName("dc-b".into()),
                voter: true,
                reached: vec![],
                unreachable: vec!["a1".into(), "a2".into()],
                age_ms: 40,
            }],
        };
        let json = record.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#""state":"down""#), "{text}");
        assert_eq!(VerdictRecord::parse("/meridian/dc/dc-a", &json).unwrap(), record);
    }

    #[test]
    fn a_bad_record_names_its_key() {
        let err = VerdictRecord::parse("/meridian/dc/dc-a", b"{").unwrap_err();
        assert!(err.to_string().contains("/meridian/dc/dc-a"), "{err}");
    }

    #[test]
    fn instants_format_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
