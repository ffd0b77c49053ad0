//! The replicated alarm table (etcd's alarm store): which member raised which alarm. Alarms change only through
//! the log (`Cmd::Alarm`), so every member agrees on them; while NOSPACE is active, the store refuses commands
//! that add data ([`adds_data`]) as etcd's capped applier does. Persisted under `kv/alarms` and carried in
//! snapshots.

use std::collections::BTreeSet;

use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmResponse, AlarmType, TxnRequest};
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::{EtcdError, NodeId};

use crate::error::{Error, Result};

/// The active alarms, ordered by member then alarm type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmTable {
    active: BTreeSet<(u64, i32)>,
}

impl AlarmTable {
    /// Every active alarm of type `alarm` (`NONE`: of any type), as etcd lists them.
    pub fn get(&self, alarm: AlarmType) -> Vec<AlarmMember> {
        self.active
            .iter()
            .filter(|(_, a)| alarm == AlarmType::None || *a == alarm as i32)
            .map(|&(member, a)| AlarmMember { member_id: member, alarm: a })
            .collect()
    }

    /// Whether NOSPACE is active for any member.
    pub fn no_space(&self) -> bool {
        self.active.iter().any(|(_, a)| *a == AlarmType::Nospace as i32)
    }

    /// Whether `member` has raised `alarm`.
    pub fn is_active(&self, member: NodeId, alarm: AlarmType) -> bool {
        self.active.contains(&(member.0, alarm as i32))
    }

    /// Whether no alarm is active.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Applies an ACTIVATE or DEACTIVATE as etcd does: activating answers the alarm (new or already active);
    /// deactivating answers it only when it was active. `NONE` is not an alarm one can raise or clear, and GET
    /// is not a command of the log.
    pub(crate) fn apply(&mut self, req: &AlarmRequest) -> Result<AlarmResponse> {
        let alarm = AlarmType::try_from(req.alarm).map_err(|_| unknown_alarm(req.alarm))?;
        let action = AlarmAction::try_from(req.action).map_err(|_| unknown_action(req.action))?;
        let member = AlarmMember { member_id: req.member_id, alarm: req.alarm };
        let mut resp = AlarmResponse::default();
        match action {
            AlarmAction::Get => return Err(unknown_action(req.action)),
            _ if alarm == AlarmType::None => {}
            AlarmAction::Activate => {
                self.active.insert((req.member_id, req.alarm));
                resp.alarms.push(member);
            }
            AlarmAction::Deactivate => {
                if self.active.remove(&(req.member_id, req.alarm)) {
                    resp.alarms.push(member);
                }
            }
        }
        Ok(resp)
    }

    /// The stored form: 12 bytes per alarm (member id, alarm type), big-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.active.len() * 12);
        for (member, alarm) in &self.active {
            out.extend(member.to_be_bytes());
            out.extend(alarm.to_be_bytes());
        }
        out
    }

    /// Reads what [`AlarmTable::encode`] wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if !bytes.len().is_multiple_of(12) {
            return Err(Error::corrupt(format!("alarm table is {} bytes", bytes.len())));
        }
        let active = bytes
            .chunks_exact(12)
            .map(|c| {
                let member = u64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
                let alarm = i32::from_be_bytes(c[8..].try_into().expect("4 bytes"));
                (member, alarm)
            })
            .collect();
        Ok(AlarmTable { active })
    }
}

fn unknown_alarm(alarm: i32) -> Error {
    EtcdError::Internal(format!("unknown alarm type {alarm}")).into()
}

fn unknown_action(action: i32) -> Error {
    EtcdError::Internal(format!("alarm action {action} is not a write")).into()
}

/// Whether a command adds data, so that the NOSPACE alarm refuses it: a put, a txn with a put in either branch
/// (nested ones included), a lease grant. Deletes, compaction, lease revokes and checkpoints, and alarm changes
/// go on, so that an operator can free space and disarm.
pub fn adds_data(cmd: &Cmd) -> bool {
    match cmd {
        Cmd::Put(_) | Cmd::LeaseGrant(_) => true,
        Cmd::Txn(t) => txn_puts(t),
        Cmd::DeleteRange(_)
        | Cmd::Compaction(_)
        | Cmd::LeaseRevoke(_)
        | Cmd::LeaseCheckpoint(_)
        | Cmd::Alarm(_)
        | Cmd::AuthChange(_) => false,
    }
}

fn txn_puts(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match &op.request {
        Some(Request::RequestPut(_)) => true,
        Some(Request::RequestTxn(n)) => txn_puts(n),
        _ => false,
    })
}

/// The bytes a command is expected to add to the backend, as etcd's quota estimates them (a fixed overhead per
/// key plus key and value; per lease a smaller one); the larger branch of a txn counts.
pub fn quota_cost(cmd: &Cmd) -> u64 {
    const KV_OVERHEAD: u64 = 256;
    const LEASE_OVERHEAD: u64 = 64;
    fn txn_cost(t: &TxnRequest) -> u64 {
        let branch = |ops: &[meridian_proto::etcdserverpb::RequestOp]| -> u64 {
            ops.iter()
                .map(|op| match &op.request {
                    Some(Request::RequestPut(p)) => KV_OVERHEAD + (p.key.len() + p.value.len()) as u64,
                    Some(Request::RequestTxn(n)) => txn_cost(n),
                    _ => 0,
                })
                .sum()
        };
        branch(&t.success).max(branch(&t.failure))
    }
    match cmd {
        Cmd::Put(p) => KV_OVERHEAD + (p.key.len() + p.value.len()) as u64,
        Cmd::Txn(t) => txn_cost(t),
        Cmd::LeaseGrant(_) => LEASE_OVERHEAD,
        _ => 0,
    }
}
