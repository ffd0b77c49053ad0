//! Publishing this member's own description (name, dc, zone, client URL) into the Raft membership.
//!
//! `etcdctl member add` only knows a peer URL, so a member that joins that way appears in the
//! membership with an empty name and no client URL. Like etcd, which publishes a member's
//! attributes when it starts, every member checks its record once it can see the membership and, if
//! the record differs from its configuration, asks the leader to update it
//! (`RaftNode::publish_self`, forwarded to the leader over the peer transport and written as a
//! membership change). A member started from a topology already has the right record, so for it this
//! is one comparison.

use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::MemberRecord;

use crate::member::Member;

/// How often the record is checked until it is right (also the retry interval after a failure).
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What this member should be recorded as.
pub fn own_record(member: &Member) -> MemberRecord {
    let cfg = &member.config();
    MemberRecord {
        name: cfg.name.clone(),
        dc: cfg.dc.0.clone(),
        zone: cfg.zone.0.clone(),
        peer_url: cfg.listen_peer.clone(),
        client_url: cfg.listen_client.clone(),
    }
}

/// Whether the cluster's record of this member lacks what it publishes. `None` (the member has not
/// received a membership naming it yet) is not a reason to publish: only the leader's log can
/// introduce a member, so there is nothing to update yet. The peer URL is the cluster's to change.
pub fn needs_publish(own: &MemberRecord, recorded: Option<&MemberRecord>) -> bool {
    recorded
        .is_some_and(|r| (&r.name, &r.dc, &r.zone, &r.client_url) != (&own.name, &own.dc, &own.zone, &own.client_url))
}

/// Runs until the record is right; retries through leader changes and while no leader is known.
pub async fn run(member: Arc<Member>) {
    let own = own_record(&member);
    let mut ticker = tokio::time::interval(CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut published = false;
    loop {
        ticker.tick().await;
        let status = member.raft().status();
        let recorded = status.members.get(&member.id());
        if recorded.is_none() {
            continue;
        }
        if !needs_publish(&own, recorded) {
            if published {
                tracing::info!(name = %own.name, "published this member's name and client URL");
            }
            return;
        }
        match member.raft().publish_self(own.clone()).await {
            Ok(()) => published = true,
            Err(e) => tracing::debug!(error = %e, "publishing this member's attributes failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_only_what_is_missing_or_changed() {
        let own = MemberRecord {
            name: "n4".into(),
            dc: "dc-c".into(),
            zone: "z1".into(),
            peer_url: "http://127.0.0.4:2380".into(),
            client_url: "http://127.0.0.4:2379".into(),
        };
        let added = MemberRecord { peer_url: own.peer_url.clone(), ..Default::default() };
        let moved_peer = MemberRecord { peer_url: "http://127.0.0.44:2380".into(), ..own.clone() };
        let renamed = MemberRecord { name: "old".into(), ..own.clone() };
        let cases = [
            (None, false, "not in the membership yet"),
            (Some(&added), true, "added by MemberAdd: only the peer URL is known"),
            (Some(&own), false, "already published"),
            (Some(&moved_peer), false, "peer URL changed by MemberUpdate"),
            (Some(&renamed), true, "restarted under a new name"),
        ];
        for (recorded, want, why) in cases {
            assert_eq!(needs_publish(&own, recorded), want, "{why}");
        }
    }
}
