//! The failover groups as the admin API shows them (`GET /failover`) and the CLI reads them: each group's
//! definition, its active datacenter with the token, and the hooks that have not acknowledged that token yet.

use meridian_failover::ActiveRecord;
use meridian_failover::audit::TokenLog;
use meridian_types::{DcName, Failback, FailoverGroupSpec, GroupName, Revision};
use serde::{Deserialize, Serialize};

use super::store::Active;
use crate::failover_catalog::Source;

/// A group's active record with its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveView {
    /// The group.
    pub group: GroupName,
    /// The active datacenter.
    pub dc: DcName,
    /// The one before.
    pub previous: Option<DcName>,
    /// The fencing token: the revision of the record (its key's `mod_revision`).
    pub token: i64,
    /// The Raft term of its decider.
    pub term: u64,
    /// Why the group moved there.
    pub reason: String,
    /// Since when, RFC 3339.
    pub since: String,
    /// Since when, milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// An operator chose it.
    pub manual: bool,
}

impl ActiveView {
    /// The view of `record` written at `token`.
    pub fn new(record: ActiveRecord, token: Revision) -> ActiveView {
        ActiveView {
            group: record.group,
            dc: record.dc,
            previous: record.previous,
            token: token.0,
            term: record.term,
            reason: record.reason,
            since: record.since,
            since_unix_ms: record.since_unix_ms,
            manual: record.manual,
        }
    }
}

/// One group in `GET /failover`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The group.
    pub name: GroupName,
    /// Where its definition comes from.
    pub source: Source,
    /// Its datacenters, most preferred first.
    pub datacenters: Vec<DcName>,
    /// Whether it fails back by itself.
    pub failback: Failback,
    /// The failback hold in effect.
    pub failback_hold_ms: u64,
    /// Its hooks, described (`webhook http://...`, `command prog args`).
    pub hooks: Vec<String>,
    /// The active record, if the group has one.
    pub active: Option<ActiveView>,
    /// The hooks that have not acknowledged the active record's token yet.
    pub pending_hooks: Vec<String>,
}

impl GroupReport {
    /// The report of `spec`, with its `active` record and the audit `log` of that record's token.
    pub fn new(
        spec: FailoverGroupSpec,
        source: Source,
        default_hold_ms: u64,
        active: Option<&Active>,
        log: Option<&TokenLog>,
    ) -> GroupReport {
        let hooks: Vec<String> = spec.hooks.iter().map(|h| h.target.describe()).collect();
        let pending_hooks = match (active.and_then(|a| a.record.as_ref()), log) {
            (Some(_), Some(log)) if !log.acknowledged => {
                hooks.iter().enumerate().filter(|(i, _)| !log.acked_hooks.contains(i)).map(|(_, h)| h.clone()).collect()
            }
            _ => Vec::new(),
        };
        GroupReport {
            failback_hold_ms: spec.hold_ms(default_hold_ms),
            name: spec.name,
            source,
            datacenters: spec.datacenters,
            failback: spec.failback,
            hooks,
            active: active.and_then(|a| a.record.clone().map(|r| ActiveView::new(r, a.token))),
            pending_hooks,
        }
    }
}

/// The body of `GET /failover`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverReport {
    /// Every group, topology file's first.
    pub groups: Vec<GroupReport>,
}
