//! Why a failover record is unusable, or an operator's switch refused.

/// Errors of the failover crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record stored under the reserved prefix did not parse.
    #[error("failover: record under {key} is not valid JSON")]
    BadRecord {
        /// The key holding the record.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A switch names a datacenter the group does not list.
    #[error("datacenter {dc:?} is not in failover group {group:?} ({datacenters})")]
    NotInGroup {
        /// The group.
        group: String,
        /// The datacenter asked for.
        dc: String,
        /// The group's datacenters, comma-separated.
        datacenters: String,
    },
    /// A switch names a datacenter whose verdict is `down`.
    #[error("failover group {group:?}: {dc} is down; a group is never moved to a down datacenter")]
    DcDown {
        /// The group.
        group: String,
        /// The datacenter asked for.
        dc: String,
    },
    /// A promote names the datacenter already active.
    #[error("failover group {group:?}: {dc} is already the active datacenter")]
    AlreadyActive {
        /// The group.
        group: String,
        /// The active datacenter.
        dc: String,
    },
    /// A demote of a group that has no active datacenter yet.
    #[error("failover group {group:?} has no active datacenter yet")]
    NoActive {
        /// The group.
        group: String,
    },
    /// A demote finds no datacenter to move to.
    #[error("failover group {group:?}: every other datacenter is down; it stays in {dc}")]
    NoOtherDc {
        /// The group.
        group: String,
        /// The active datacenter.
        dc: String,
    },
}

/// The failover crate's result.
pub type Result<T> = std::result::Result<T, Error>;
