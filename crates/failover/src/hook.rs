//! What a hook is told of a switch, and when a failed hook is tried again. A webhook receives [`HookCall`] as
//! its JSON body; a command gets the same facts in its environment ([`HookCall::env`]). Receivers drop
//! duplicates by `token`: a hook is called at least once per token, and never with a token smaller than one
//! already acknowledged for its group.

use meridian_types::{DcName, GroupName, Revision};
use serde::{Deserialize, Serialize};

use crate::ActiveRecord;

/// Exponential backoff between rounds of attempts: `first_ms` after the first failed round, doubling each time,
/// never more than `max_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failed round.
    pub first_ms: u64,
    /// The longest wait.
    pub max_ms: u64,
}

/// The schedule of every hook: 100 ms, 200 ms, 400 ms ... up to 30 s between rounds.
pub const HOOK_RETRY: RetrySchedule = RetrySchedule { first_ms: 100, max_ms: 30_000 };

impl RetrySchedule {
    /// The wait before the next round once `failed_rounds` rounds have failed (at least one).
    pub fn delay_ms(&self, failed_rounds: u32) -> u64 {
        let doublings = failed_rounds.saturating_sub(1);
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        self.first_ms.saturating_mul(factor).min(self.max_ms)
    }
}

/// One call of a hook: the JSON body a webhook receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCall {
    /// The group.
    pub group: GroupName,
    /// The datacenter now active.
    pub dc: DcName,
    /// The datacenter active before, if any.
    pub previous: Option<DcName>,
    /// The fencing token: the revision of the active record.
    pub token: i64,
    /// The Raft term of the switch's decider.
    pub term: u64,
    /// Why the group moved.
    pub reason: String,
}

impl HookCall {
    /// The call announcing `record`, written at revision `token`.
    pub fn of(record: &ActiveRecord, token: Revision) -> HookCall {
        HookCall {
            group: record.group.clone(),
            dc: record.dc.clone(),
            previous: record.previous.clone(),
            token: token.0,
            term: record.term,
            reason: record.reason.clone(),
        }
    }

    /// The body of a webhook's POST.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a hook call always serialises")
    }

    /// The environment of a command hook (`MERIDIAN_PREVIOUS_DC` is empty for a group's first record).
    pub fn env(&self) -> [(&'static str, String); 6] {
        [
            ("MERIDIAN_GROUP", self.group.0.clone()),
            ("MERIDIAN_DC", self.dc.0.clone()),
            ("MERIDIAN_PREVIOUS_DC", self.previous.as_ref().map(|d| d.0.clone()).unwrap_or_default()),
            ("MERIDIAN_TOKEN", self.token.to_string()),
            ("MERIDIAN_TERM", self.term.to_string()),
            ("MERIDIAN_REASON", self.reason.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let s = RetrySchedule { first_ms: 100, max_ms: 1_000 };
        let table =
            [(0, 100), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000), (6, 1_000), (64, 1_000), (u32::MAX, 1_000)];
        for (failed, want) in table {
            assert_eq!(s.delay_ms(failed), want, "after {failed} failed rounds");
        }
        assert_eq!(HOOK_RETRY.delay_ms(1), 100);
        assert_eq!(HOOK_RETRY.delay_ms(30), 30_000, "the production schedule is capped at 30 s");
    }

    #[test]
    fn a_call_carries_the_switch_as_json_and_as_environment() {
        let record = ActiveRecord {
            group: GroupName::from("db"),
            dc: DcName::from("dc-b"),
            previous: Some(DcName::from("dc-a")),
            reason: "dc-a is down".into(),
            term: 3,
            since: String::new(),
            since_unix_ms: 0,
            manual: false,
        };
        let call = HookCall::of(&record, Revision(42));
        assert_eq!(
            String::from_utf8(call.to_json()).unwrap(),
            r#"{"group":"db","dc":"dc-b","previous":"dc-a","token":42,"term":3,"reason":"dc-a is down"}"#
        );
        let env = call.env();
        assert!(
            env.contains(&("MERIDIAN_TOKEN", "42".into())) && env.contains(&("MERIDIAN_PREVIOUS_DC", "dc-a".into()))
        );
        let first = HookCall { previous: None, ..call };
        assert!(first.env().contains(&("MERIDIAN_PREVIOUS_DC", String::new())));
    }
}
