//! What a replicated command needs of its caller: every key range it reads or writes, through every branch
//! of a txn (nested ones too), every compare, `prev_kv`, and the keys already attached to a lease it attaches
//! to or revokes (etcd's checkLeasePuts: who cannot revoke a lease must not extend it). Commands that change
//! the cluster rather than keys need the root role.

use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, TxnRequest};
use meridian_proto::meridianpb::RequestAuth;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::EtcdError;

use super::permission::PermKind;
use super::state::AuthStore;

/// Commands only the root role may issue when auth is on.
pub fn needs_admin(cmd: &Cmd) -> bool {
    matches!(cmd, Cmd::AuthChange(_) | Cmd::Compaction(_) | Cmd::Alarm(_) | Cmd::LeaseCheckpoint(_))
}

/// Judges `cmd` for `who`; `lease_keys` answers the keys attached to a lease.
pub(crate) fn check_command(
    auth: &AuthStore,
    who: &RequestAuth,
    cmd: &Cmd,
    lease_keys: &dyn Fn(i64) -> Vec<Vec<u8>>,
) -> Result<(), EtcdError> {
    if !auth.enabled() {
        return Ok(());
    }
    let c = Checker { auth, who, lease_keys };
    match cmd {
        Cmd::Put(p) => c.put(p),
        Cmd::DeleteRange(d) => c.delete(d),
        Cmd::Txn(t) => c.txn(t),
        Cmd::LeaseGrant(_) => auth.check_user(who),
        Cmd::LeaseRevoke(r) => c.lease_writable(r.id),
        Cmd::AuthChange(_) | Cmd::Compaction(_) | Cmd::Alarm(_) | Cmd::LeaseCheckpoint(_) => auth.check_admin(who),
    }
}

struct Checker<'a> {
    auth: &'a AuthStore,
    who: &'a RequestAuth,
    lease_keys: &'a dyn Fn(i64) -> Vec<Vec<u8>>,
}

impl Checker<'_> {
    fn range(&self, key: &[u8], end: &[u8], kind: PermKind) -> Result<(), EtcdError> {
        self.auth.check_range(self.who, key, end, kind)
    }

    fn put(&self, p: &PutRequest) -> Result<(), EtcdError> {
        self.range(&p.key, &[], PermKind::Write)?;
        if p.lease != 0 {
            self.lease_writable(p.lease)?;
        }
        if p.prev_kv {
            self.range(&p.key, &[], PermKind::Read)?;
        }
        Ok(())
    }

    fn delete(&self, d: &DeleteRangeRequest) -> Result<(), EtcdError> {
        self.range(&d.key, &d.range_end, PermKind::Write)?;
        if d.prev_kv {
            self.range(&d.key, &d.range_end, PermKind::Read)?;
        }
        Ok(())
    }

    fn txn(&self, t: &TxnRequest) -> Result<(), EtcdError> {
        for c in &t.compare {
            self.range(&c.key, &c.range_end, PermKind::Read)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match &op.request {
                Some(Request::RequestRange(r)) => self.range(&r.key, &r.range_end, PermKind::Read)?,
                Some(Request::RequestPut(p)) => self.put(p)?,
                Some(Request::RequestDeleteRange(d)) => self.delete(d)?,
                Some(Request::RequestTxn(n)) => self.txn(n)?,
                None => {}
            }
        }
        Ok(())
    }

    /// Write permission on every key attached to `lease`.
    fn lease_writable(&self, lease: i64) -> Result<(), EtcdError> {
        for key in (self.lease_keys)(lease) {
            self.range(&key, &[], PermKind::Write)?;
        }
        Ok(())
    }
}
