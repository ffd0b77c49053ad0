//! The audit log of hook calls, under `/meridian/audit/<group>/<token>/`: one record per attempt at
//! `<attempt>` (JSON: hook, outcome, error text, time) and, once every hook of the group acknowledged the token,
//! an `ack` marker. Tokens are zero-padded to 20 digits and attempts to 6, so the keys sort in the order things
//! happened. A new leader reads a token's records to resume the hooks that have not acknowledged it.

use std::collections::BTreeSet;

use meridian_types::reserved::AUDIT_PREFIX;
use meridian_types::{GroupName, Revision};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The last component of a token's ack marker.
const ACK: &str = "ack";

/// Every audit key of `group`: `/meridian/audit/<group>/`.
pub fn group_prefix(group: &GroupName) -> String {
    format!("{AUDIT_PREFIX}{group}/")
}

/// The audit keys of one token: `/meridian/audit/<group>/<token:020>/`.
pub fn token_prefix(group: &GroupName, token: Revision) -> String {
    format!("{}{:020}/", group_prefix(group), token.0)
}

/// The record of attempt number `attempt` for `token`.
pub fn attempt_key(group: &GroupName, token: Revision, attempt: u32) -> String {
    format!("{}{attempt:06}", token_prefix(group, token))
}

/// The marker that every hook acknowledged `token`.
pub fn ack_key(group: &GroupName, token: Revision) -> String {
    format!("{}{ACK}", token_prefix(group, token))
}

/// The token an ack marker key of `group` is for; `None` for any other key.
pub fn acked_token(group: &GroupName, key: &str) -> Option<Revision> {
    let rest = key.strip_prefix(&group_prefix(group))?;
    let (token, last) = rest.split_once('/')?;
    (last == ACK).then(|| token.parse().ok().map(Revision)).flatten()
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The hook acknowledged (2xx answer, exit status 0).
    Ok,
    /// The hook answered with a failure, or could not be reached or started.
    Failed,
    /// The hook did not finish within its timeout and was abandoned.
    TimedOut,
}

/// One attempt, the value of `/meridian/audit/<group>/<token>/<attempt>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The group.
    pub group: GroupName,
    /// The token the hook was called with.
    pub token: i64,
    /// The hook's position in the group's list.
    pub hook: usize,
    /// What was called (`webhook http://...`, `command prog args`).
    pub target: String,
    /// The attempt's number for this token (across the group's hooks).
    pub attempt: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// What went wrong, when it failed.
    pub error: Option<String>,
    /// When it ended, RFC 3339 in UTC.
    pub at: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The ack marker of a token, the value of `/meridian/audit/<group>/<token>/ack`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRecord {
    /// The group.
    pub group: GroupName,
    /// The token every hook acknowledged.
    pub token: i64,
    /// How many hooks the group had.
    pub hooks: usize,
    /// When the last of them acknowledged, RFC 3339 in UTC.
    pub at: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// One record of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditEntry {
    /// An attempt.
    Attempt(AttemptRecord),
    /// The ack marker.
    Ack(AckRecord),
}

impl AuditEntry {
    /// Parses the value stored under `key` (an ack marker when the key ends in `/ack`).
    pub fn parse(key: &str, value: &[u8]) -> Result<AuditEntry> {
        let bad = |source| Error::BadRecord { key: key.to_string(), source };
        if key.ends_with(&format!("/{ACK}")) {
            serde_json::from_slice(value).map(AuditEntry::Ack).map_err(bad)
        } else {
            serde_json::from_slice(value).map(AuditEntry::Attempt).map_err(bad)
        }
    }

    /// The JSON stored in the key.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            AuditEntry::Attempt(a) => serde_json::to_vec(a),
            AuditEntry::Ack(a) => serde_json::to_vec(a),
        }
        .expect("an audit record always serialises")
    }
}

/// What the audit log says of one token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenLog {
    /// The ack marker is written.
    pub acknowledged: bool,
    /// The hooks (by position) with a successful attempt.
    pub acked_hooks: BTreeSet<usize>,
    /// The number the next attempt takes (one past the highest recorded).
    pub next_attempt: u32,
}

impl TokenLog {
    /// The summary of a token's records.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> TokenLog {
        let mut log = TokenLog::default();
        for entry in entries {
            match entry {
                AuditEntry::Ack(_) => log.acknowledged = true,
                AuditEntry::Attempt(a) => {
                    log.next_attempt = log.next_attempt.max(a.attempt.saturating_add(1));
                    if a.outcome == Outcome::Ok {
                        log.acked_hooks.insert(a.hook);
                    }
                }
            }
        }
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(hook: usize, attempt: u32, outcome: Outcome) -> AuditEntry {
        AuditEntry::Attempt(AttemptRecord {
            group: GroupName::from("db"),
            token: 7,
            hook,
            target: "webhook http://h:1/".into(),
            attempt,
            outcome,
            error: (outcome != Outcome::Ok).then(|| "connection refused".into()),
            at: crate::rfc3339(5),
            at_unix_ms: 5,
        })
    }

    #[test]
    fn keys_sort_in_the_order_things_happened() {
        let g = GroupName::from("db");
        assert_eq!(attempt_key(&g, Revision(42), 3), "/meridian/audit/db/00000000000000000042/000003");
        assert_eq!(ack_key(&g, Revision(42)), "/meridian/audit/db/00000000000000000042/ack");
        assert!(attempt_key(&g, Revision(42), 999_999) < ack_key(&g, Revision(42)), "the marker sorts after attempts");
        assert!(ack_key(&g, Revision(42)) < attempt_key(&g, Revision(100), 0), "tokens sort numerically");
        assert_eq!(acked_token(&g, &ack_key(&g, Revision(42))), Some(Revision(42)));
        assert_eq!(acked_token(&g, &attempt_key(&g, Revision(42), 1)), None);
        assert_eq!(acked_token(&GroupName::from("d"), &ack_key(&g, Revision(42))), None, "another group's marker");
    }

    #[test]
    fn records_round_trip_by_their_key() {
        let g = GroupName::from("db");
        let a = attempt(1, 4, Outcome::TimedOut);
        let text = String::from_utf8(a.to_json()).unwrap();
        assert!(
            text.contains(r#""outcome":"timed_out""#) && text.contains(r#""error":"connection refused""#),
            "{text}"
        );
        assert_eq!(AuditEntry::parse(&attempt_key(&g, Revision(7), 4), text.as_bytes()).unwrap(), a);
        let ack = AuditEntry::Ack(AckRecord { group: g.clone(), token: 7, hooks: 2, at: "t".into(), at_unix_ms: 1 });
        assert_eq!(AuditEntry::parse(&ack_key(&g, Revision(7)), &ack.to_json()).unwrap(), ack);
        assert!(AuditEntry::parse(&ack_key(&g, Revision(7)), &a.to_json()).is_err(), "an attempt is no marker");
    }

    #[test]
    fn a_token_log_knows_acknowledged_hooks_and_the_next_attempt() {
        let entries = [attempt(0, 0, Outcome::Failed), attempt(1, 1, Outcome::Ok), attempt(0, 2, Outcome::TimedOut)];
        let log = TokenLog::of(&entries);
        assert_eq!(log, TokenLog { acknowledged: false, acked_hooks: BTreeSet::from([1]), next_attempt: 3 });
        assert_eq!(TokenLog::of(&[]), TokenLog::default(), "a token never called starts at attempt 0");
        let ack = AuditEntry::Ack(AckRecord {
            group: GroupName::from("db"),
            token: 7,
            hooks: 2,
            at: String::new(),
            at_unix_ms: 0,
        });
        assert!(TokenLog::of(&[ack]).acknowledged);
    }
}
