//! The active datacenter of a failover group, the value of `/meridian/active/<group>` as clients read and watch
//! it. Its fencing token is not in the JSON: it is the key's `mod_revision`, the revision of the write that made
//! it, which every reader and watcher sees with the value and which only grows.

use meridian_types::{DcName, GroupName};
use serde::{Deserialize, Serialize};

use crate::group::Switch;
use crate::{Error, Result, rfc3339};

/// The JSON value of `/meridian/active/<group>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRecord {
    /// The group.
    pub group: GroupName,
    /// The datacenter now active.
    pub dc: DcName,
    /// The datacenter active before, `null` for the group's first record.
    pub previous: Option<DcName>,
    /// Why the switch happened, in words.
    pub reason: String,
    /// The Raft term of the member that decided it.
    pub term: u64,
    /// When it became active, RFC 3339 in UTC.
    pub since: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// An operator chose it (promote/demote) rather than the leader's rules.
    pub manual: bool,
}

impl ActiveRecord {
    /// The record of `switch`, made at `now_unix_ms` in `term`, replacing `previous`.
    pub fn of_switch(
        group: GroupName,
        switch: Switch,
        previous: Option<DcName>,
        term: u64,
        now_unix_ms: u64,
        manual: bool,
    ) -> ActiveRecord {
        ActiveRecord {
            group,
            dc: switch.to,
            previous,
            reason: switch.reason,
            term,
            since: rfc3339(now_unix_ms),
            since_unix_ms: now_unix_ms,
            manual,
        }
    }

    /// Parses the value stored under `key`.
    pub fn parse(key: &str, value: &[u8]) -> Result<ActiveRecord> {
        serde_json::from_slice(value).map_err(|source| Error::BadRecord { key: key.to_string(), source })
    }

    /// The JSON stored in the key.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an active record always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_record_round_trips_and_names_every_field() {
        let switch = Switch { to: DcName::from("dc-b"), reason: "dc-a is down".into() };
        let record =
            ActiveRecord::of_switch(GroupName::from("db"), switch, Some(DcName::from("dc-a")), 4, 1_500, false);
        let text = String::from_utf8(record.to_json()).unwrap();
        assert_eq!(
            text,
            r#"{"group":"db","dc":"dc-b","previous":"dc-a","reason":"dc-a is down","term":4,"since":"1970-01-01T00:00:01.5Z","since_unix_ms":1500,"manual":false}"#
        );
        assert_eq!(ActiveRecord::parse("/meridian/active/db", text.as_bytes()).unwrap(), record);
        let first = r#"{"group":"db","dc":"dc-a","previous":null,"reason":"r","term":1,"since":"s","since_unix_ms":0,"manual":true}"#;
        assert_eq!(ActiveRecord::parse("k", first.as_bytes()).unwrap().previous, None);
        assert!(
            ActiveRecord::parse("/meridian/active/db", b"{}").unwrap_err().to_string().contains("/meridian/active/db")
        );
    }
}
