//! Behaviour tests of `KvStore`, one file per concern, on `MemBackend`.

mod alarm;
mod compaction;
mod etcd_db;
mod lease;
mod persistence;
mod put_delete;
mod range;
mod reserved;
mod snapshot;
mod txn;
pub(crate) mod util;
mod watch;
