//! Meridian's consensus layer: the adapter between openraft (`=0.10.0-alpha.37`) and the MVCC
//! state machine `meridian_kv::KvStore`, with all persistence on redb.
//!
//! - `disk`: the storage seam (`Disk`): the real directory, or the simulation's in-memory disk;
//! - `log_store` / `log_writer`: the Raft log in `raft-log.redb`, written by one thread that
//!   group-commits every queued write in one durable transaction;
//! - `page_journal`: the redb storage backend under `raft-log.redb` that makes each of those
//!   transactions one sequential, synced journal write, and tells the writer the moment it is durable;
//! - `kv_backend`: `RedbBackend`, the kv crate's storage seam over `state.redb`;
//! - `kv_sync`: when and how `state.redb` is made durable without stalling the apply path;
//! - `defrag`: copying `state.redb` into a fresh file to give freed space back, while applies go on;
//! - `state_machine`: applies committed entries to the kv store, builds and installs snapshots
//!   (`snapshot.bin`);
//! - `transport`: the byte-level peer seam and openraft's network on top of it;
//! - `node`: `RaftNode`, the facade the server uses;
//! - `placement`: the pure leader-placement policy (leader affinity, failback hold);
//! - `watchdog`: the pure isolated-leader check used by `propose` and `read_barrier`;
//! - `succession`: the pure order in which survivors campaign when the leader is known dead, and
//!   `leader_loss`: the Raft side of acting on it (`RaftNode::release_dead_leader`, `campaign`).
//! - `membership`: runtime membership changes with etcd's rules (`RaftNode::add_learner` & co.).

mod append_stream;
mod codec;
mod defrag;
pub mod disk;
mod error;
mod fsutil;
mod in_process;
mod inbound;
mod kv_backend;
mod kv_sync;
mod leader_contact;
mod leader_loss;
mod log_state;
mod log_store;
mod log_writer;
mod membership;
mod node;
mod observer;
mod page_journal;
pub mod placement;
mod prealloc;
mod raft;
mod read_policy;
mod response_codec;
mod runtime;
mod snapshot_data;
mod snapshot_file;
mod state_machine;
pub mod succession;
#[cfg(test)]
mod test_disk;
mod transport;
mod types;
pub mod watchdog;

pub use defrag::DefragReport;
pub use disk::{Disk, OsDisk};
pub use error::MembershipError;
pub use error::{Cause, Error, Result, says_disk_full};
pub use in_process::InProcessTransport;
pub use kv_backend::{DEFRAG_FILE, RedbBackend, RedbView, STATE_FILE};
pub use leader_contact::Contact;
pub use log_store::{LOG_FILE, LogReader, LogStore};
pub use membership::{learner_ready, valid_peer_url};
pub use node::{NodeConfig, NodeStatus, RaftNode};
pub use observer::{ApplyObserver, LeaseChange, NoopObserver};
pub use read_policy::ReadPolicy;
pub use response_codec::{decode_apply_result, encode_apply_result};
pub use runtime::{MeridianRuntime, seed_thread_rng};
pub use snapshot_data::{FrozenView, SnapshotData};
pub use snapshot_file::SNAPSHOT_FILE;
pub use state_machine::{
    Defragmenter, KvSnapshot, META_APPLIED, META_MEMBERSHIP, SharedKv, SnapshotBuilder, StateMachine,
};
pub use transport::{Transport, until_first_error};
pub use types::{ApplyResponse, Command, Entry, LogId, MemberRecord, SnapshotMeta, StoredMembership, TypeConfig, Vote};
pub use types::{SenderCheck, any_sender};

/// Re-export of the pinned openraft, so callers name exactly the version this crate uses.
pub use openraft;
