//! When this member last heard from a leader: the time of the last append (heartbeats included) a leader sent it,
//! with that leader's id. openraft keeps the same instant inside its vote lease but does not publish it; the
//! server's failover watcher needs it to campaign at its turn once the leader has been silent for an election
//! timeout (a paused or cut-off leader, whose sockets stay open), instead of waiting for a random timer.
//!
//! An append is recorded as it arrives, before openraft judges it, so the recorded instant is never later than
//! the one openraft's lease counts from: a campaign timed from it can only come late, never early.

use meridian_types::NodeId;
use parking_lot::Mutex;
use tokio::time::Instant;

/// The last append received from a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The leader whose vote the append carried.
    pub leader: NodeId,
    /// When it arrived.
    pub at: Instant,
}

/// Shared by the inbound paths (unary and streamed appends) and the node's readers.
#[derive(Debug, Default)]
pub(crate) struct LeaderContact(Mutex<Option<Contact>>);

impl LeaderContact {
    /// An append from `leader` arrived now.
    pub(crate) fn heard(&self, leader: NodeId) {
        *self.0.lock() = Some(Contact { leader, at: Instant::now() });
    }

    /// The last append received, if any.
    pub(crate) fn last(&self) -> Option<Contact> {
        *self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_latest_append_wins() {
        let contact = LeaderContact::default();
        assert_eq!(contact.last(), None);
        contact.heard(NodeId(1));
        let first = contact.last().unwrap();
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        contact.heard(NodeId(2));
        let second = contact.last().unwrap();
        assert_eq!(second.leader, NodeId(2));
        assert_eq!(second.at - first.at, std::time::Duration::from_millis(100));
    }
}
