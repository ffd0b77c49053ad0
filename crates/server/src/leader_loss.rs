//! Failover without waiting out the election timeout when the leader's process is gone (design §4).
//!
//! A crashed process closes its sockets, so a follower sees the leader's append stream end at once. That alone
//! proves nothing (a leader also ends a stream to open a new one, and a network fault can cut one), so the
//! follower then dials the leader's peer address: a *refused* connection (or one reset as soon as it is made)
//! means nothing listens there any more, which is the one case where the leader certainly cannot serve. Only
//! then does the follower stop honouring the leader's lease (`RaftNode::release_dead_leader`) and, at its turn
//! in the succession order (`meridian_consensus::succession`), campaign (`RaftNode::campaign`, a pre-vote
//! first). A dial that times out or succeeds changes nothing: a partition or a paused leader is left to the
//! election timeout: at the election timeout of silence for the first survivor in the succession order, one
//! heartbeat later for each rank after it (`silent_leader_delay`), a pre-vote first.
//!
//! A leader that ends a stream to open another leaves a gap in which no stream of its is open, and a death in
//! that gap ends no stream. So after a stream ends, the follower keeps dialing the leader, a few times a
//! heartbeat, until the leader opens a new stream (or an election timeout has passed). A follower that has a
//! leader but no stream from it at all (it has just restarted, and the leader is still backing off from the
//! time it was down) dials the leader once a heartbeat for the same reason.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_consensus::Contact;
use meridian_consensus::RaftNode;
use meridian_consensus::succession::{campaign_delay, silent_leader_delay};
use meridian_types::{DcName, NodeId};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::net::Network;

/// The append streams leaders open to this member: how many were ever opened, how many are open, and a bell
/// that rings when one ends.
#[derive(Clone, Debug, Default)]
pub struct AppendStreams(Arc<Streams>);

#[derive(Debug, Default)]
struct Streams {
    opened: AtomicU64,
    open: AtomicU64,
    ended: Notify,
}

/// Held for as long as one append stream is open; dropping it reports the end.
#[derive(Debug)]
pub struct OpenStream(AppendStreams);

impl AppendStreams {
    /// An append stream from a leader has opened.
    pub fn opened(&self) -> OpenStream {
        self.0.open.fetch_add(1, Ordering::AcqRel);
        self.0.opened.fetch_add(1, Ordering::AcqRel);
        OpenStream(self.clone())
    }

    fn opened_count(&self) -> u64 {
        self.0.opened.load(Ordering::Acquire)
    }

    fn open_count(&self) -> u64 {
        self.0.open.load(Ordering::Acquire)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        tracing::debug!("append stream ended");
        self.0.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.0.ended.notify_one();
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
    /// The election timeout: how long after a stream ended the leader is dialed again while it opens no new one
    /// (after that the timer replaces a dead leader anyway), and how long a silent leader is waited for before
    /// the first survivor campaigns.
    pub election: Duration,
}

/// The Raft node stopped; the watcher ends with it.
struct Stopped;

/// What woke the watcher.
enum Wake {
    /// An append stream ended.
    StreamEnded,
    /// A heartbeat passed.
    Tick,
    /// The leader has been silent until this member's turn to campaign.
    SilentTurn(Contact),
}

/// Runs until the Raft node stops: after each append stream end, and every heartbeat while the leader has no
/// stream open to this member, checks whether the leader is gone and acts; and when the leader has been silent
/// until this member's turn (an election timeout for the first survivor), campaigns, once per silence.
pub async fn run(raft: RaftNode, watch: LeaderLossWatch, streams: AppendStreams) {
    let mut campaigned_after: Option<Contact> = None;
    loop {
        let turn = silent_turn(&raft, &watch).filter(|(contact, _)| campaigned_after != Some(*contact));
        let wake = tokio::select! {
            () = streams.0.ended.notified() => Wake::StreamEnded,
            () = tokio::time::sleep(watch.step) => Wake::Tick,
            contact = until_turn(turn) => Wake::SilentTurn(contact),
        };
        let look = match wake {
            Wake::StreamEnded => watch_gap(&raft, &watch, &streams).await,
            Wake::Tick if streams.open_count() == 0 => look_once(&raft, &watch).await,
            Wake::Tick => Ok(()),
            Wake::SilentTurn(contact) => {
                campaigned_after = Some(contact);
                campaign_after_silence(&raft, contact).await
            }
        };
        if look.is_err() {
            return;
        }
    }
}

/// The last contact with the leader this member follows, and when its silence since reaches this member's turn
/// to campaign; `None` when it follows no leader, has not heard from it, or is not a surviving voter.
fn silent_turn(raft: &RaftNode, watch: &LeaderLossWatch) -> Option<(Contact, Instant)> {
    let contact = raft.leader_contact()?;
    let delay = silent_leader_delay(
        &watch.preference,
        &raft.voter_dcs(),
        contact.leader,
        raft.id(),
        watch.election,
        watch.step,
    )?;
    Some((contact, contact.at + delay))
}

/// Completes at the turn, with the contact it was computed from; never without one.
async fn until_turn(turn: Option<(Contact, Instant)>) -> Contact {
    match turn {
        Some((contact, at)) => {
            tokio::time::sleep_until(at).await;
            contact
        }
        None => std::future::pending().await,
    }
}

/// Campaigns (a pre-vote first) if nothing was heard from the leader since `contact`: a member that still hears
/// from it refuses the pre-vote, so a leader that is only slow towards this member stays.
async fn campaign_after_silence(raft: &RaftNode, contact: Contact) -> Result<(), Stopped> {
    if raft.leader_contact() != Some(contact) {
        return Ok(());
    }
    tracing::info!(
        leader = %format!("{:x}", contact.leader.0),
        silent_ms = contact.at.elapsed().as_millis() as u64,
        "the leader has been silent until this member's turn: campaigning"
    );
    raft.campaign().await.map_err(|_| Stopped)
}

/// Dials the leader once; acts if it is dead.
async fn look_once(raft: &RaftNode, watch: &LeaderLossWatch) -> Result<(), Stopped> {
    match raft.current_leader().filter(|l| *l != raft.id()) {
        Some(leader) if refuses_connections(raft, watch, leader).await => succeed(raft, watch, leader).await,
        _ => Ok(()),
    }
}

/// After a stream ended: dials the leader until it shows itself dead (then acts), opens a new stream, or the
/// patience runs out.
async fn watch_gap(raft: &RaftNode, watch: &LeaderLossWatch, streams: &AppendStreams) -> Result<(), Stopped> {
    let opened = streams.opened_count();
    let give_up = Instant::now() + watch.election;
    loop {
        let Some(leader) = raft.current_leader().filter(|l| *l != raft.id()) else { return Ok(()) };
        if refuses_connections(raft, watch, leader).await {
            return succeed(raft, watch, leader).await;
        }
        tracing::debug!(leader = %format!("{:x}", leader.0), "an append stream ended; the leader still listens");
        tokio::time::sleep(watch.step / 4).await;
        if streams.opened_count() != opened || Instant::now() >= give_up {
            return Ok(());
        }
    }
}

/// The leader is dead: releases its lease and, at this member's turn, campaigns.
async fn succeed(raft: &RaftNode, watch: &LeaderLossWatch, leader: NodeId) -> Result<(), Stopped> {
    match raft.release_dead_leader(leader).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(_) => return Err(Stopped),
    }
    let Some(delay) = campaign_delay(&watch.preference, &raft.voter_dcs(), leader, raft.id(), watch.step) else {
        tracing::info!(leader = %format!("{:x}", leader.0), "leader is gone: its lease is released");
        return Ok(());
    };
    tracing::info!(
        leader = %format!("{:x}", leader.0),
        campaign_in_ms = delay.as_millis() as u64,
        "leader is gone: its lease is released"
    );
    tokio::time::sleep(delay).await;
    // Someone with an earlier turn may have won meanwhile.
    if raft.current_leader() == Some(leader) && raft.campaign().await.is_err() {
        return Err(Stopped);
    }
    Ok(())
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
