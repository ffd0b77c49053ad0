//! Failover without waiting out the election timeout when the leader's process is gone (design §4).
//!
//! A crashed process closes its sockets, so a follower sees the leader's append stream end at once. That alone
//! proves nothing (a leader also ends a stream to open a new one, and a network fault can cut one), so the
//! follower then dials the leader's peer address: a *refused* connection (or one reset as soon as it is made)
//! means nothing listens there any more, which is the one case where the leader certainly cannot serve. Only then does the follower stop honouring
//! the leader's lease (`RaftNode::release_dead_leader`) and, at its turn in the succession order
//! (`meridian_consensus::succession`), campaign (`RaftNode::campaign`, a pre-vote first). A dial that times out
//! or succeeds changes nothing: a partition or a paused leader is left to the election timeout, as before.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::RaftNode;
use meridian_consensus::succession::campaign_delay;
use meridian_types::{DcName, NodeId};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use crate::net::Network;

/// Rings when an append stream from a leader ends, for whatever reason.
#[derive(Clone, Debug, Default)]
pub struct StreamEnds(Arc<Notify>);

impl StreamEnds {
    /// An append stream from a leader has ended.
    pub fn ended(&self) {
        self.0.notify_one();
    }
}

/// What the watcher needs besides the member's Raft node.
pub struct LeaderLossWatch {
    /// Dials the leader.
    pub net: Arc<dyn Network>,
    /// The topology's leader preference, which orders the survivors' campaigns.
    pub preference: Vec<DcName>,
    /// The heartbeat interval: how long a dial may take, and the spacing of the survivors' campaigns.
    pub step: Duration,
}

/// Runs until the Raft node stops: after each append stream end, checks whether the leader is gone and acts.
pub async fn run(raft: RaftNode, watch: LeaderLossWatch, ends: StreamEnds) {
    loop {
        ends.0.notified().await;
        let Some(leader) = raft.current_leader().filter(|l| *l != raft.id()) else { continue };
        if !refuses_connections(&raft, &watch, leader).await {
            tracing::debug!(leader = %format!("{:x}", leader.0), "an append stream ended; the leader still listens");
            continue;
        }
        match raft.release_dead_leader(leader).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => return,
        }
        let Some(delay) = campaign_delay(&watch.preference, &raft.voter_dcs(), leader, raft.id(), watch.step) else {
            tracing::info!(leader = %format!("{:x}", leader.0), "leader is gone: its lease is released");
            continue;
        };
        tracing::info!(
            leader = %format!("{:x}", leader.0),
            campaign_in_ms = delay.as_millis() as u64,
            "leader is gone: its lease is released"
        );
        tokio::time::sleep(delay).await;
        // Someone with an earlier turn may have won meanwhile.
        if raft.current_leader() == Some(leader) && raft.campaign().await.is_err() {
            return;
        }
    }
}

/// Whether `leader`'s peer address shows that nothing serves there any more: the dial is refused, or it is
/// accepted and then reset or closed at once (a process being torn down can still accept a connection into
/// its listener's backlog just before the listener closes). A dial that hangs, or a connection that stays
/// open, means the leader may be alive.
async fn refuses_connections(raft: &RaftNode, watch: &LeaderLossWatch, leader: NodeId) -> bool {
    let Some(authority) = raft.member(leader).and_then(|m| authority(&m.peer_url)) else { return false };
    match tokio::time::timeout(watch.step, watch.net.connect(authority)).await {
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "dial of the leader failed");
            e.kind() == io::ErrorKind::ConnectionRefused
        }
        Ok(Ok(mut conn)) => {
            // A live server waits for the HTTP/2 preface and says nothing.
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(watch.step / 4, conn.read(&mut byte)).await;
            tracing::debug!(?read, "dial of the leader connected");
            matches!(read, Ok(Ok(0) | Err(_)))
        }
        Err(_) => {
            tracing::debug!("dial of the leader timed out");
            false
        }
    }
}

/// The `host:port` of a peer URL.
fn authority(url: &str) -> Option<String> {
    url.parse::<tonic::transport::Uri>().ok()?.authority().map(|a| a.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_host_and_port() {
        assert_eq!(authority("http://10.0.0.1:2380").as_deref(), Some("10.0.0.1:2380"));
        assert_eq!(authority("https://a.example:7001/").as_deref(), Some("a.example:7001"));
        assert_eq!(authority("not a url"), None);
    }
}
