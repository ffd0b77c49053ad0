//! Since when a datacenter has been `up`, as the leader deciding for failover groups observes it. A verdict's
//! own `since` says when it last changed; but a datacenter whose verdict key disappears is `up` (unjudged) from
//! that moment, not since the epoch. So the leader remembers, per datacenter, the last time it saw a verdict
//! other than `up`, and an `up` datacenter counts as up only from then on. A new leader starts with no memory
//! and trusts the verdicts' `since`.

use std::collections::BTreeMap;

use meridian_types::DcName;

use crate::{DcState, DcStatus};

/// The last time each datacenter was seen with a verdict other than `up`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpSince {
    last_not_up: BTreeMap<DcName, u64>,
}

impl UpSince {
    /// Records the `verdicts` seen at `now_unix_ms` and returns them with each `up` datacenter's `since` no
    /// earlier than the last time it was seen otherwise (datacenters without a verdict that were once seen
    /// judged are added as `up`).
    pub fn observe(&mut self, verdicts: &BTreeMap<DcName, DcStatus>, now_unix_ms: u64) -> BTreeMap<DcName, DcStatus> {
        for (dc, status) in verdicts {
            if status.state != DcState::Up {
                self.last_not_up.insert(dc.clone(), now_unix_ms);
            }
        }
        let mut seen = verdicts.clone();
        for (dc, last) in &self.last_not_up {
            let status = seen.entry(dc.clone()).or_insert(DcStatus::UNJUDGED);
            if status.state == DcState::Up {
                status.since_unix_ms = status.since_unix_ms.max(*last);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(list: &[(&str, DcState, u64)]) -> BTreeMap<DcName, DcStatus> {
        list.iter()
            .map(|(dc, state, since)| (DcName::from(*dc), DcStatus { state: *state, since_unix_ms: *since }))
            .collect()
    }

    #[test]
    fn a_vanished_verdict_is_up_only_from_when_it_vanished() {
        let mut up = UpSince::default();
        let first = up.observe(&verdicts(&[("dc-a", DcState::Down, 100), ("dc-b", DcState::Up, 50)]), 1_000);
        assert_eq!(
            first,
            verdicts(&[("dc-a", DcState::Down, 100), ("dc-b", DcState::Up, 50)]),
            "verdicts pass as they are"
        );
        // dc-a's key is gone at 1 100: it is up, but only since the last time it was seen down.
        let later = up.observe(&verdicts(&[("dc-b", DcState::Up, 50)]), 1_100);
        assert_eq!(later, verdicts(&[("dc-a", DcState::Up, 1_000), ("dc-b", DcState::Up, 50)]));
    }

    #[test]
    fn an_up_verdict_keeps_its_own_since_when_later_than_the_memory() {
        let mut up = UpSince::default();
        up.observe(&verdicts(&[("dc-a", DcState::Partitioned, 0)]), 1_000);
        let seen = up.observe(&verdicts(&[("dc-a", DcState::Up, 1_050)]), 1_100);
        assert_eq!(seen, verdicts(&[("dc-a", DcState::Up, 1_050)]));
        let seen = up.observe(&verdicts(&[("dc-a", DcState::Up, 10)]), 1_200);
        assert_eq!(seen, verdicts(&[("dc-a", DcState::Up, 1_000)]), "a stale since is raised to the memory");
    }

    #[test]
    fn a_new_leader_trusts_the_verdicts() {
        let seen = UpSince::default().observe(&verdicts(&[("dc-a", DcState::Up, 10)]), 5_000);
        assert_eq!(seen, verdicts(&[("dc-a", DcState::Up, 10)]));
    }
}
