//! The MVCC state machine of Meridian, with etcd v3.4/3.5 semantics.
//!
//! [`KvStore`] applies replicated commands ([`meridian_proto::meridianpb::RaftCommand`]) deterministically:
//! puts, deletes and transactions get revisions and produce watch events; compaction drops old history;
//! leases are granted, checkpointed and revoked (revocation deletes the attached keys at one revision).
//! The crate does no I/O and reads no clock: storage is reached through the [`Backend`] trait
//! ([`MemBackend`] here, a redb backend in `consensus`), and time reaches [`LeaseClock`] as an argument.
//!
//! Changes made by [`KvStore::apply`] are visible to reads at once and are persisted together, in one
//! backend transaction, by [`KvStore::commit`]; the caller chooses how many commands a commit covers.
//! A snapshot can be dumped from a frozen [`BackendView`] ([`KvStore::commit_and_view`], then
//! [`write_snapshot_of_view`] for a Raft snapshot or [`write_etcd_db_of_view`] for etcd's format), so writers are not
//! held up while the whole store is read.

mod alarm;
mod apply;
mod auth;
mod auto_compaction;
mod backend;
mod bbolt;
mod compaction;
mod error;
mod etcd_db;
mod hash;
mod history;
mod key_index;
mod key_range;
mod lease;
mod lease_clock;
mod mem_backend;
mod pending;
mod range;
mod record;
mod reserved;
mod response;
mod revision;
mod snapshot;
mod store;
mod txn;

#[cfg(test)]
mod tests;

pub use alarm::{AlarmTable, adds_data, quota_cost};
pub use auth::{AuthStore, PermKind, ROOT, needs_admin};
pub use auto_compaction::{AutoCompaction, AutoCompactor, REVISION_MODE_INTERVAL, Tick};
pub use backend::{Backend, BackendView, WriteBatch};
pub use error::{Error, Result};
pub use etcd_db::write_etcd_db_of_view;
pub use lease::{MAX_LEASE_TTL, MIN_LEASE_TTL};
pub use lease_clock::LeaseClock;
pub use mem_backend::{MemBackend, MemView};
pub use reserved::{check_client_command, writes_only_reserved};
pub use response::{Applied, CommandResponse, LeaseInfo};
pub use revision::RevisionKey;
pub use snapshot::{snapshot_revision, write_snapshot_of_view};
pub use store::{KvStore, META_PREFIX};
pub use txn::{MAX_TXN_DEPTH, MAX_TXN_OPS, check_txn_request};
