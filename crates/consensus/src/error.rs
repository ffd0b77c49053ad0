//! The consensus layer's error vocabulary. Callers above (the server) only need to know whether to
//! redirect (`NotLeader`), retry later (`NoLeader`, `Unavailable`, `LeaderChanged`), or give up on
//! this member (`Storage`, `Fatal`, `Shutdown`); `From<Error> for EtcdError` maps each onto the
//! etcd error a client expects.

use std::fmt;
use std::sync::Arc;

use meridian_types::{EtcdError, NodeId};
use serde::{Deserialize, Serialize};

/// Result alias of the consensus crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a consensus operation did not complete.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// This member is not the leader; `leader` is the current leader when one is known.
    #[error("not leader (leader hint: {leader:?})")]
    NotLeader {
        /// The member believed to be leader.
        leader: Option<NodeId>,
    },
    /// No leader is known at the moment (election in progress or quorum lost).
    #[error("no leader")]
    NoLeader,
    /// The proposal's entry was discarded by a leader change; it may or may not have committed.
    #[error("leader changed; the outcome of the proposal is unknown")]
    LeaderChanged,
    /// The operation could not reach a quorum or timed out.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A peer message could not be delivered or decoded.
    #[error("transport: {0}")]
    Transport(String),
    /// Reading or writing local storage failed: what was being done, and why.
    #[error("storage: {doing}")]
    Storage {
        /// What was being done ("opening the kv store").
        doing: String,
        /// The failure underneath.
        #[source]
        cause: Cause,
    },
    /// The Raft node stopped because of an unrecoverable error.
    #[error("fatal: {0}")]
    Fatal(String),
    /// The node has been shut down.
    #[error("raft node is shut down")]
    Shutdown,
    /// The Raft node had already stopped because its disk is full when the request came: nothing was proposed.
    #[error("the Raft node stopped: the disk is full")]
    StoppedOnFullDisk,
    /// A membership change was refused by etcd's rules.
    #[error("membership change refused: {0}")]
    Membership(#[from] MembershipError),
    /// A leader transfer named a member that cannot lead (not a voter of the membership).
    #[error("bad leader transferee")]
    BadTransferee,
    /// A leader transfer did not complete in time.
    #[error("leader transfer took too long")]
    TransferTimeout,
}

impl From<Error> for EtcdError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotLeader { .. } => EtcdError::NotLeader,
            Error::NoLeader => EtcdError::NoLeader,
            Error::LeaderChanged => EtcdError::TimeoutDueToLeaderFail,
            Error::Unavailable(_) => EtcdError::Timeout,
            Error::Shutdown => EtcdError::Stopped,
            Error::Membership(m) => m.into(),
            Error::BadTransferee => EtcdError::BadLeaderTransferee,
            Error::TransferTimeout => EtcdError::TimeoutLeaderTransfer,
            Error::Storage { cause, .. } if says_disk_full(&cause.to_string()) => EtcdError::NoSpace,
            Error::Storage { doing, cause } => EtcdError::Internal(format!("storage: {doing}: {cause}")),
            Error::StoppedOnFullDisk => EtcdError::NoSpace,
            // The node died (its disk filled up) while the request was under way: a write may have reached the
            // followers before, so its outcome is unknown, as after a leader's crash.
            Error::Fatal(m) if says_disk_full(&m) => EtcdError::TimeoutDueToLeaderFail,
            // openraft's fatal errors carry its internal state in debug form; the member's log has them.
            Error::Fatal(_) => {
                EtcdError::Internal("this member's Raft node stopped after an unrecoverable error; see its log".into())
            }
            Error::Transport(m) => EtcdError::Internal(m),
        }
    }
}

/// Whether an error's text says the file system is full (ENOSPC reaches here only as text: openraft keeps the
/// storage errors it stops on as strings).
pub fn says_disk_full(text: &str) -> bool {
    text.contains("No space left on device") || text.contains("os error 28")
}

impl Error {
    /// A storage failure while `doing` something.
    pub(crate) fn storage(doing: &str, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage { doing: doing.to_owned(), cause: Cause(Arc::new(cause)) }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::storage("file I/O", e)
    }
}

/// The error underneath another, shared between clones of the error that carries it (consensus errors are
/// cloned to every waiter of a failed operation). Two causes are equal when they read the same.
#[derive(Clone, Debug)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// Why a membership change was refused. Each maps onto the etcd error a client expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// No member has this id.
    #[error("member not found")]
    MemberNotFound,
    /// A member with this id already exists.
    #[error("member id already exists")]
    MemberExists,
    /// Another member already uses this peer URL.
    #[error("peer URL already exists")]
    PeerUrlExists,
    /// Only learners can be promoted.
    #[error("member is not a learner")]
    MemberNotLearner,
    /// The learner has not caught up with the leader.
    #[error("learner is not in sync with the leader")]
    LearnerNotReady,
    /// The peer URL is not `http(s)://host:port`.
    #[error("invalid peer URL")]
    MemberBadUrls,
}

impl From<MembershipError> for EtcdError {
    fn from(e: MembershipError) -> Self {
        match e {
            MembershipError::MemberNotFound => EtcdError::MemberNotFound,
            MembershipError::MemberExists => EtcdError::MemberExists,
            MembershipError::PeerUrlExists => EtcdError::PeerUrlExists,
            MembershipError::MemberNotLearner => EtcdError::MemberNotLearner,
            MembershipError::LearnerNotReady => EtcdError::LearnerNotReady,
            MembershipError::MemberBadUrls => EtcdError::MemberBadUrls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_etcd_errors() {
        let cases = [
            (Error::NotLeader { leader: Some(NodeId(2)) }, EtcdError::NotLeader),
            (Error::NoLeader, EtcdError::NoLeader),
            (Error::LeaderChanged, EtcdError::TimeoutDueToLeaderFail),
            (Error::Unavailable("x".into()), EtcdError::Timeout),
            (Error::Shutdown, EtcdError::Stopped),
            (Error::BadTransferee, EtcdError::BadLeaderTransferee),
            (Error::TransferTimeout, EtcdError::TimeoutLeaderTransfer),
            (Error::Membership(MembershipError::LearnerNotReady), EtcdError::LearnerNotReady),
            (
                Error::storage("writing", std::io::Error::other("disk")),
                EtcdError::Internal("storage: writing: disk".into()),
            ),
            (Error::storage("writing", std::io::Error::from_raw_os_error(28)), EtcdError::NoSpace),
            (
                Error::Fatal("when Write Apply(LogId { index: 9 }): No space left on device (os error 28)".into()),
                EtcdError::TimeoutDueToLeaderFail,
            ),
            (Error::StoppedOnFullDisk, EtcdError::NoSpace),
        ];
        let fatal = EtcdError::from(Error::Fatal("StorageError { subject: Apply(LogId { .. }) }".into())).to_string();
        assert!(!fatal.contains('{'), "no debug output reaches a client: {fatal}");
        for (from, want) in cases {
            assert_eq!(EtcdError::from(from), want);
        }
    }
}
