//! The backend quota (etcd's `--quota-backend-bytes`): a write that would take `state.redb` past it is refused
//! with etcd's "database space exceeded" before it is proposed, and asks for the NOSPACE alarm, which
//! `space_watch` raises through the log. While `space_watch` finds the disk itself nearly full, every write that
//! adds data is refused the same way.

use std::sync::atomic::{AtomicBool, Ordering};

use meridian_kv::quota_cost;
use meridian_proto::meridianpb::RaftCommand;
use meridian_types::EtcdError;
use tokio::sync::Notify;

/// The quota of one member, and its request to raise the alarm.
#[derive(Debug)]
pub struct Quota {
    limit: u64,
    /// A write was refused: raise NOSPACE even if the database itself is not past the limit yet.
    refused: AtomicBool,
    /// The data dir's file system is below its reserve.
    disk_low: AtomicBool,
    wake: Notify,
}

impl Quota {
    /// A quota of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Quota { limit, refused: AtomicBool::new(false), disk_low: AtomicBool::new(false), wake: Notify::new() }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Admits `cmd` if what it adds (etcd's estimate) fits beside the database's `db_size` bytes; otherwise
    /// asks [`watch`] to raise NOSPACE and refuses with etcd's error. Commands that add nothing always pass.
    pub fn admit(&self, cmd: &RaftCommand, db_size: impl FnOnce() -> u64) -> Result<(), EtcdError> {
        let cost = cmd.cmd.as_ref().map_or(0, quota_cost);
        if cost == 0 {
            return Ok(());
        }
        if self.disk_low.load(Ordering::Relaxed) {
            return Err(EtcdError::NoSpace);
        }
        // The server's own records under /meridian/ pass the quota as they pass the NOSPACE alarm at apply.
        if cmd.auth.is_none() && cmd.cmd.as_ref().is_some_and(meridian_kv::writes_only_reserved) {
            return Ok(());
        }
        if db_size().saturating_add(cost) <= self.limit {
            return Ok(());
        }
        self.refused.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        Err(EtcdError::NoSpace)
    }

    /// Records whether the disk is below its reserve (see `space_watch`).
    pub fn set_disk_low(&self, low: bool) {
        self.disk_low.store(low, Ordering::Relaxed);
    }

    /// Whether the disk is below its reserve.
    pub fn disk_low(&self) -> bool {
        self.disk_low.load(Ordering::Relaxed)
    }

    /// Whether a write was refused since the last call.
    pub fn take_refused(&self) -> bool {
        self.refused.swap(false, Ordering::Relaxed)
    }

    /// Remembers a refusal again (raising the alarm failed and must be retried).
    pub fn put_back_refused(&self, refused: bool) {
        if refused {
            self.refused.store(true, Ordering::Relaxed);
        }
    }

    /// Completes when a write is refused (or at once if one was since the last wait).
    pub async fn refusal(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::{DeleteRangeRequest, PutRequest};
    use meridian_proto::meridianpb::raft_command::Cmd;

    use super::*;

    fn put(len: usize) -> RaftCommand {
        RaftCommand {
            auth: None,
            cmd: Some(Cmd::Put(PutRequest { key: b"k".to_vec(), value: vec![0; len], ..Default::default() })),
            ..Default::default()
        }
    }

    #[test]
    fn writes_past_the_quota_are_refused_and_ask_for_the_alarm() {
        let quota = Quota::new(10_000);
        assert_eq!(quota.admit(&put(100), || 9_000), Ok(()));
        assert!(!quota.take_refused());
        assert_eq!(quota.admit(&put(1_000), || 9_000), Err(EtcdError::NoSpace), "9000 + 256 + 1 + 1000 > 10000");
        assert!(quota.take_refused());
        let delete = RaftCommand {
            auth: None,
            cmd: Some(Cmd::DeleteRange(DeleteRangeRequest::default())),
            ..Default::default()
        };
        assert_eq!(quota.admit(&delete, || 1 << 40), Ok(()), "deletes free space");
        let verdict = RaftCommand {
            auth: None,
            cmd: Some(Cmd::Put(PutRequest { key: b"/meridian/dc/dc-b".to_vec(), ..Default::default() })),
            ..Default::default()
        };
        assert_eq!(quota.admit(&verdict, || 1 << 40), Ok(()), "the server's own records pass");
        let client = RaftCommand { auth: Some(Default::default()), ..verdict };
        assert_eq!(quota.admit(&client, || 1 << 40), Err(EtcdError::NoSpace), "a client's does not");
    }

    #[test]
    fn a_disk_below_its_reserve_refuses_what_adds_data() {
        let quota = Quota::new(10_000);
        quota.set_disk_low(true);
        assert_eq!(quota.admit(&put(1), || 0), Err(EtcdError::NoSpace));
        let delete = RaftCommand {
            auth: None,
            cmd: Some(Cmd::DeleteRange(DeleteRangeRequest::default())),
            ..Default::default()
        };
        assert_eq!(quota.admit(&delete, || 0), Ok(()));
        quota.set_disk_low(false);
        assert_eq!(quota.admit(&put(1), || 0), Ok(()));
    }
}
