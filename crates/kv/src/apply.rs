//! Applying replicated commands: dispatch of a `RaftCommand`, and the write primitives shared by put,
//! delete-range, txn and lease revoke. All writes of one command go through one `WriteCtx`, so they share
//! one main revision with ascending sub revisions, and reads inside a txn see its earlier writes.
//!
//! Every check that can reject a command runs before the first write, so a rejected command changes
//! nothing (etcd validates the same way: request checks, then the txn path checks, then execution).

use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::response_op::Response;
use meridian_proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, ResponseHeader, ResponseOp, TxnRequest,
    TxnResponse,
};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::mvccpb::event::EventType;
use meridian_proto::mvccpb::{Event, KeyValue};
use meridian_types::reserved::RESERVED_PREFIX;
use meridian_types::{EtcdError, Revision};

use crate::alarm;
use crate::auth;
use crate::backend::Backend;
use crate::error::Result;
use crate::key_index::LiveMeta;
use crate::key_range::KeyRange;
use crate::record::Record;
use crate::reserved;
use crate::response::{Applied, CommandResponse, header};
use crate::revision::RevisionKey;
use crate::store::KvStore;
use crate::txn;

/// The write in progress of one command.
#[derive(Debug)]
pub(crate) struct WriteCtx {
    begin: i64,
    next_sub: i64,
    events: Vec<Event>,
}

impl WriteCtx {
    pub fn new(begin: i64) -> Self {
        WriteCtx { begin, next_sub: 0, events: Vec::new() }
    }

    /// The main revision every write of this command gets.
    fn rev(&self) -> i64 {
        self.begin + 1
    }

    fn take_rev(&mut self) -> RevisionKey {
        let r = RevisionKey::new(self.rev(), self.next_sub);
        self.next_sub += 1;
        r
    }

    /// The revision reads inside the command see: the new one once something was written.
    pub fn view_rev(&self) -> i64 {
        if self.next_sub > 0 { self.rev() } else { self.begin }
    }
}

impl<B: Backend> KvStore<B> {
    /// Apply one replicated command. Deterministic: same store + same command => same result everywhere.
    /// A rejected command (Err(Error::Etcd)) changes nothing and is still "applied" (the log index
    /// advances). Err(Error::Backend | Error::Corrupt) is fatal for the node.
    pub fn apply(&mut self, cmd: &RaftCommand) -> Result<Applied> {
        let Some(who) = &cmd.auth else {
            return self.apply_cmd(cmd);
        };
        let Some(inner) = &cmd.cmd else {
            return Err(EtcdError::Internal("empty raft command".into()).into());
        };
        reserved::check_client_command(inner)?;
        // etcd's auth applier: the caller's permissions are judged against the auth store as of this entry, so
        // a role revoked before the command committed stops it, on every member alike.
        let lease_keys =
            |id: i64| self.leases.leases.get(&id).map(|l| l.keys.iter().cloned().collect()).unwrap_or_default();
        auth::check_command(&self.auth, who, inner, &lease_keys)?;
        self.sparing_reserved = true;
        let applied = self.apply_cmd(cmd);
        self.sparing_reserved = false;
        applied
    }

    fn apply_cmd(&mut self, raft_cmd: &RaftCommand) -> Result<Applied> {
        let Some(cmd) = &raft_cmd.cmd else {
            return Err(EtcdError::Internal("empty raft command".into()).into());
        };
        // etcd's capped applier: under NOSPACE only what frees space or changes no data goes through, and the
        // server's own records under /meridian/ (a failover must not wait for an operator to free space).
        let servers_own = raft_cmd.auth.is_none() && reserved::writes_only_reserved(cmd);
        if self.alarms.no_space() && alarm::adds_data(cmd) && !servers_own {
            return Err(EtcdError::NoSpace.into());
        }
        match cmd {
            Cmd::Put(p) => self.apply_put(p),
            Cmd::DeleteRange(d) => self.apply_delete_range(d),
            Cmd::Txn(t) => self.apply_txn(t),
            Cmd::Compaction(c) => self.apply_compaction(c),
            Cmd::LeaseGrant(g) => self.apply_lease_grant(g),
            Cmd::LeaseRevoke(r) => self.apply_lease_revoke(r),
            Cmd::LeaseCheckpoint(c) => self.apply_lease_checkpoint(c),
            Cmd::Alarm(a) => {
                let resp = self.alarms.apply(a)?;
                self.pending.meta_dirty = true;
                Ok(Applied {
                    response: CommandResponse::Alarm(resp),
                    events: Vec::new(),
                    revision: Revision(self.current),
                })
            }
            Cmd::AuthChange(a) => {
                self.auth.apply(a)?;
                self.pending.meta_dirty = true;
                Ok(Applied { response: CommandResponse::Auth, events: Vec::new(), revision: Revision(self.current) })
            }
        }
    }

    fn apply_put(&mut self, p: &PutRequest) -> Result<Applied> {
        txn::check_put_request(p)?;
        // Same order as etcd's standalone Put: the lease first, then the ignore_* existence check.
        if p.lease != 0 && !self.leases.contains(p.lease) {
            return Err(EtcdError::LeaseNotFound.into());
        }
        if (p.ignore_value || p.ignore_lease) && !self.is_live(&p.key) {
            return Err(EtcdError::KeyNotFound.into());
        }
        let mut ctx = WriteCtx::new(self.current);
        let resp = self.exec_put(&mut ctx, p)?;
        let (revision, events) = self.finish(ctx);
        Ok(Applied { response: CommandResponse::Put(resp), events, revision: Revision(revision) })
    }

    fn apply_delete_range(&mut self, d: &DeleteRangeRequest) -> Result<Applied> {
        txn::check_delete_request(d)?;
        let mut ctx = WriteCtx::new(self.current);
        let mut resp = self.exec_delete_range(&mut ctx, d)?;
        let (revision, events) = self.finish(ctx);
        resp.header = header(revision);
        Ok(Applied { response: CommandResponse::DeleteRange(resp), events, revision: Revision(revision) })
    }

    fn apply_txn(&mut self, t: &TxnRequest) -> Result<Applied> {
        txn::check_txn_request(t)?;
        txn::check_intervals(&t.success)?;
        txn::check_intervals(&t.failure)?;
        // etcd decides the branch of every nested txn against the state before the txn runs.
        let mut path = Vec::new();
        self.txn_path(t, &mut path)?;
        self.check_txn_path(t, &path)?;
        let mut ctx = WriteCtx::new(self.current);
        let mut cursor = 0;
        let mut resp = self.exec_txn(&mut ctx, t, &path, &mut cursor)?;
        let (revision, events) = self.finish(ctx);
        resp.header = header(revision);
        Ok(Applied { response: CommandResponse::Txn(resp), events, revision: Revision(revision) })
    }

    /// Ends a command: the store moves to the new revision if anything was written.
    pub(crate) fn finish(&mut self, ctx: WriteCtx) -> (i64, Vec<Event>) {
        let rev = ctx.view_rev();
        if rev != self.current {
            self.current = rev;
            self.pending.meta_dirty = true;
        }
        (rev, ctx.events)
    }

    /// Put after validation. Fails only if validation was skipped (KeyNotFound for ignore_*).
    fn exec_put(&mut self, ctx: &mut WriteCtx, p: &PutRequest) -> Result<PutResponse> {
        // The previous value is read even when the client did not ask for it: the event carries it for
        // watchers with prev_kv.
        let prev = self.live(&p.key)?;
        let (value, lease) = match (&prev, p.ignore_value, p.ignore_lease) {
            (None, true, _) | (None, _, true) => return Err(EtcdError::KeyNotFound.into()),
            (Some(old), iv, il) => {
                (if iv { old.value.clone() } else { p.value.clone() }, if il { old.lease } else { p.lease })
            }
            (None, false, false) => (p.value.clone(), p.lease),
        };
        let prev_kv = if p.prev_kv { prev.clone() } else { None };
        self.write_put(ctx, &p.key, value, lease, prev);
        Ok(PutResponse { header: header(ctx.rev()), prev_kv })
    }

    fn exec_delete_range(&mut self, ctx: &mut WriteCtx, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        let range = KeyRange::new(&d.key, &d.range_end);
        let mut keys = self.live_keys_in(&range);
        if self.sparing_reserved {
            keys.retain(|k| !k.starts_with(RESERVED_PREFIX));
        }
        let mut prevs = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(prev) = self.write_delete(ctx, key)? {
                prevs.push(prev);
            }
        }
        Ok(DeleteRangeResponse {
            header: header(ctx.view_rev()),
            deleted: prevs.len() as i64,
            prev_kvs: if d.prev_kv { prevs } else { Vec::new() },
        })
    }

    fn exec_txn(
        &mut self,
        ctx: &mut WriteCtx,
        t: &TxnRequest,
        path: &[bool],
        cursor: &mut usize,
    ) -> Result<TxnResponse> {
        let succeeded = txn::next_branch(path, cursor)?;
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match &op.request {
                Some(Request::RequestRange(r)) => Response::ResponseRange(self.range_at_view(r, ctx.view_rev())?),
                Some(Request::RequestPut(p)) => Response::ResponsePut(self.exec_put(ctx, p)?),
                Some(Request::RequestDeleteRange(d)) => Response::ResponseDeleteRange(self.exec_delete_range(ctx, d)?),
                Some(Request::RequestTxn(n)) => Response::ResponseTxn(self.exec_txn(ctx, n, path, cursor)?),
                None => return Err(EtcdError::KeyNotFound.into()),
            };
            responses.push(ResponseOp { response: Some(response) });
        }
        Ok(TxnResponse {
            // etcd leaves nested txn headers empty; the top level overwrites this one.
            header: Some(ResponseHeader::default()),
            succeeded,
            responses,
        })
    }

    /// Writes `key` = `value` at the next sub revision, `prev` being its live value; moves the key between
    /// leases.
    fn write_put(&mut self, ctx: &mut WriteCtx, key: &[u8], value: Vec<u8>, lease: i64, prev: Option<KeyValue>) {
        let rev = ctx.take_rev();
        // Look up before inserting: `entry` would allocate a key copy even when the key exists.
        let ki = match self.index.get_mut(key) {
            Some(ki) => ki,
            None => self.index.entry(key.to_vec()).or_default(),
        };
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version.saturating_add(1)),
            None => (rev.main, 1),
        };
        ki.put(rev, LiveMeta { create_revision, version, lease });
        let kv = KeyValue { key: key.to_vec(), create_revision, mod_revision: rev.main, version, value, lease };
        self.pending.put_record(rev, Record::encode_put(&kv));
        if let Some(p) = &prev {
            self.leases.detach(p.lease, key);
        }
        self.leases.attach(lease, key);
        ctx.events.push(Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: prev });
    }

    /// Deletes `key` at the next sub revision if it is live; detaches it from its lease. Returns the
    /// deleted value.
    pub(crate) fn write_delete(&mut self, ctx: &mut WriteCtx, key: &[u8]) -> Result<Option<KeyValue>> {
        let Some(prev) = self.live(key)? else { return Ok(None) };
        let rev = ctx.take_rev();
        let tomb = Record::tombstone(key, rev.main);
        if let Some(ki) = self.index.get_mut(key) {
            ki.tombstone(rev);
        }
        self.pending.put_record(rev, tomb.encode());
        self.leases.detach(prev.lease, key);
        ctx.events.push(Event { r#type: EventType::Delete as i32, kv: Some(tomb.kv), prev_kv: Some(prev.clone()) });
        Ok(Some(prev))
    }
}
