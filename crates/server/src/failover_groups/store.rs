//! What the failover groups' keys in the local store say: the datacenter verdicts (`/meridian/dc/<dc>`), the
//! groups defined through the API (`/meridian/groups/<name>`), the active records (`/meridian/active/<group>`,
//! each with its token, the key's `mod_revision`) and a token's audit log. A key that does not parse is
//! reported apart and otherwise ignored: a verdict that does not parse counts as no verdict.

use std::collections::BTreeMap;

use meridian_failover::audit::{self, AuditEntry, TokenLog};
use meridian_failover::{ActiveRecord, DcStatus, VerdictRecord};
use meridian_proto::etcdserverpb::RangeRequest;
use meridian_proto::mvccpb::KeyValue;
use meridian_types::reserved::{ACTIVE_PREFIX, DC_PREFIX, GROUP_PREFIX, prefix_end};
use meridian_types::{DcName, FailoverGroupSpec, GroupName, Revision};

use crate::member::Store;

/// A key whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The key.
    pub key: String,
    /// The revision of the value that failed.
    pub mod_revision: i64,
    /// Why, with its causes.
    pub error: String,
}

/// A group's active record and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Active {
    /// The record; `None` when the stored value does not parse (a switch then replaces it).
    pub record: Option<ActiveRecord>,
    /// The key's `mod_revision`: the record's fencing token.
    pub token: Revision,
}

/// The failover groups' keys as one read of the store saw them.
#[derive(Clone, Debug, Default)]
pub struct GroupKeys {
    /// Each judged datacenter's verdict.
    pub verdicts: BTreeMap<DcName, DcStatus>,
    /// Groups defined through the API, in key order.
    pub stored_groups: Vec<FailoverGroupSpec>,
    /// Each group's active record.
    pub active: BTreeMap<GroupName, Active>,
    /// Keys that did not parse.
    pub unreadable: Vec<Unreadable>,
}

/// Every key under `prefix`, at the current revision.
fn scan(kv: &Store, prefix: &str) -> Vec<KeyValue> {
    let req = RangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix), ..Default::default() };
    match kv.range(&req) {
        Ok(resp) => resp.kvs,
        Err(e) => {
            // A range of the current revision cannot be compacted away; anything else is the store failing.
            tracing::warn!(prefix, error = %e, "failover groups: reading the store failed");
            Vec::new()
        }
    }
}

/// Whether any group was defined through the API.
pub fn has_stored_groups(kv: &Store) -> bool {
    let req = RangeRequest {
        key: GROUP_PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(GROUP_PREFIX),
        count_only: true,
        ..Default::default()
    };
    kv.range(&req).is_ok_and(|r| r.count > 0)
}

fn key_text(kv: &KeyValue) -> String {
    String::from_utf8_lossy(&kv.key).into_owned()
}

/// Reads the verdicts, the stored groups and the active records.
pub fn read(kv: &Store) -> GroupKeys {
    let mut keys = GroupKeys::default();
    let mut bad = Vec::new();
    for item in scan(kv, DC_PREFIX) {
        let key = key_text(&item);
        match VerdictRecord::parse(&key, &item.value) {
            Ok(v) => {
                let dc = DcName(key[DC_PREFIX.len()..].to_owned());
                keys.verdicts.insert(dc, DcStatus { state: v.state, since_unix_ms: v.since_unix_ms });
            }
            Err(e) => bad.push(unreadable(&item, crate::error_chain::chain(&e))),
        }
    }
    for item in scan(kv, GROUP_PREFIX) {
        match serde_json::from_slice::<FailoverGroupSpec>(&item.value) {
            Ok(spec) => keys.stored_groups.push(spec),
            Err(e) => bad.push(unreadable(&item, e.to_string())),
        }
    }
    for item in scan(kv, ACTIVE_PREFIX) {
        let key = key_text(&item);
        let group = GroupName(key[ACTIVE_PREFIX.len()..].to_owned());
        let record = match ActiveRecord::parse(&key, &item.value) {
            Ok(r) => Some(r),
            Err(e) => {
                bad.push(unreadable(&item, crate::error_chain::chain(&e)));
                None
            }
        };
        keys.active.insert(group, Active { record, token: Revision(item.mod_revision) });
    }
    keys.unreadable = bad;
    keys
}

fn unreadable(kv: &KeyValue, error: String) -> Unreadable {
    Unreadable { key: key_text(kv), mod_revision: kv.mod_revision, error }
}

/// What the audit log says of `token` of `group` (records that do not parse are logged and skipped).
pub fn token_log(kv: &Store, group: &GroupName, token: Revision) -> TokenLog {
    let entries: Vec<AuditEntry> = scan(kv, &audit::token_prefix(group, token))
        .into_iter()
        .filter_map(|item| {
            let key = key_text(&item);
            AuditEntry::parse(&key, &item.value)
                .inspect_err(|e| tracing::warn!(%key, error = %crate::error_chain::chain(e), "unreadable audit record"))
                .ok()
        })
        .collect();
    TokenLog::of(&entries)
}

/// The largest token every hook of `group` acknowledged (the last ack marker in key order).
pub fn highest_acked(kv: &Store, group: &GroupName) -> Option<Revision> {
    let prefix = audit::group_prefix(group);
    let req = RangeRequest {
        key: prefix.as_bytes().to_vec(),
        range_end: prefix_end(&prefix),
        keys_only: true,
        ..Default::default()
    };
    let keys = kv.range(&req).map(|r| r.kvs).unwrap_or_default();
    keys.iter().filter_map(|item| audit::acked_token(group, &key_text(item))).max()
}
