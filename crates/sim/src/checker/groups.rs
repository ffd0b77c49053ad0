//! Failover groups, as their hooks saw them (the recorder acknowledges every call at once): a token names one
//! active datacenter, never two; and once a token has been acknowledged, no hook of that group is called with a
//! smaller one (a receiver that keeps the largest token it has seen would otherwise refuse a true switch, or a
//! stale leader would announce an old active datacenter).

use std::collections::BTreeMap;

use crate::history::History;

/// A failover-group invariant broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupViolation {
    /// Two calls with one token named different datacenters.
    #[error("group {group}: token {token} announced both {first} and {second} as active")]
    TwoActiveForOneToken {
        /// The group.
        group: String,
        /// The token.
        token: i64,
        /// The datacenter of the first call.
        first: String,
        /// The other.
        second: String,
    },
    /// A call with a smaller token after a larger one was acknowledged.
    #[error("group {group}: token {token} was announced after token {acknowledged} had been acknowledged")]
    TokenWentBack {
        /// The group.
        group: String,
        /// The later, smaller token.
        token: i64,
        /// The larger token acknowledged before.
        acknowledged: i64,
    },
}

/// Checks the hook calls of `history`.
pub fn check(history: &History) -> Vec<GroupViolation> {
    let mut out = Vec::new();
    let mut dc_of: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    let mut highest: BTreeMap<&str, i64> = BTreeMap::new();
    for call in &history.hook_calls {
        let group = call.group.as_str();
        match dc_of.get(&(group, call.token)) {
            Some(first) if *first != call.dc => out.push(GroupViolation::TwoActiveForOneToken {
                group: group.to_owned(),
                token: call.token,
                first: (*first).to_owned(),
                second: call.dc.clone(),
            }),
            Some(_) => {}
            None => {
                dc_of.insert((group, call.token), call.dc.as_str());
            }
        }
        let top = highest.entry(group).or_insert(call.token);
        if call.token < *top {
            out.push(GroupViolation::TokenWentBack { group: group.to_owned(), token: call.token, acknowledged: *top });
        }
        *top = (*top).max(call.token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HookCallRecord;

    fn call(dc: &str, token: i64) -> HookCallRecord {
        HookCallRecord { group: "svc".into(), dc: dc.into(), token, term: 2 }
    }

    #[test]
    fn repeated_calls_of_one_token_are_fine_and_going_back_or_changing_the_dc_is_not() {
        let ok = History { hook_calls: vec![call("dc-a", 3), call("dc-a", 3), call("dc-b", 9)], ..Default::default() };
        assert!(check(&ok).is_empty());
        let back =
            History { hook_calls: vec![call("dc-a", 3), call("dc-b", 9), call("dc-a", 3)], ..Default::default() };
        assert_eq!(check(&back), [GroupViolation::TokenWentBack { group: "svc".into(), token: 3, acknowledged: 9 }]);
        let two = History { hook_calls: vec![call("dc-a", 3), call("dc-b", 3)], ..Default::default() };
        assert!(matches!(check(&two)[0], GroupViolation::TwoActiveForOneToken { token: 3, .. }));
    }
}
