//! Alarms: ACTIVATE / DEACTIVATE through the log, the NOSPACE cap on commands that add data, persistence and
//! snapshots.

use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmType, CompactionRequest, LeaseGrantRequest};
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::{EtcdError, NodeId};

use super::util::*;
use crate::{CommandResponse, KvStore, MemBackend, adds_data, quota_cost};

fn alarm(s: &mut Store, action: AlarmAction, member: u64, alarm: AlarmType) -> Vec<AlarmMember> {
    let req = AlarmRequest { action: action as i32, member_id: member, alarm: alarm as i32 };
    match apply(s, Cmd::Alarm(req)).unwrap().response {
        CommandResponse::Alarm(r) => r.alarms,
        other => panic!("not an alarm response: {other:?}"),
    }
}

fn nospace(member: u64) -> AlarmMember {
    AlarmMember { member_id: member, alarm: AlarmType::Nospace as i32 }
}

#[test]
fn activate_and_deactivate_answer_as_etcd_does() {
    let mut s = store();
    assert_eq!(alarm(&mut s, AlarmAction::Activate, 7, AlarmType::Nospace), vec![nospace(7)]);
    assert_eq!(alarm(&mut s, AlarmAction::Activate, 7, AlarmType::Nospace), vec![nospace(7)], "already active");
    alarm(&mut s, AlarmAction::Activate, 3, AlarmType::Nospace);
    assert_eq!(s.alarms().get(AlarmType::None), vec![nospace(3), nospace(7)]);
    assert_eq!(s.alarms().get(AlarmType::Corrupt), vec![]);
    assert!(s.alarms().is_active(NodeId(7), AlarmType::Nospace));
    assert_eq!(alarm(&mut s, AlarmAction::Deactivate, 7, AlarmType::Nospace), vec![nospace(7)]);
    assert_eq!(alarm(&mut s, AlarmAction::Deactivate, 7, AlarmType::Nospace), vec![], "was not active");
    assert_eq!(s.alarms().get(AlarmType::None), vec![nospace(3)]);
    assert_eq!(alarm(&mut s, AlarmAction::Activate, 9, AlarmType::None), vec![], "NONE is not an alarm");
    let get = AlarmRequest { action: AlarmAction::Get as i32, member_id: 0, alarm: 0 };
    assert!(matches!(etcd_err(apply(&mut s, Cmd::Alarm(get))), EtcdError::Internal(_)), "GET is not a write");
}

#[test]
fn nospace_refuses_what_adds_data_and_lets_the_rest_through() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "2");
    let lease = grant(&mut s, 5, 60).unwrap();
    alarm(&mut s, AlarmAction::Activate, 1, AlarmType::Nospace);
    let before = rev(&s);

    assert_eq!(etcd_err(apply(&mut s, Cmd::Put(put_req("c", "3")))), EtcdError::NoSpace);
    let t = txn(vec![], vec![op_del("a", "")], vec![op_txn(txn(vec![], vec![op_put("c", "3")], vec![]))]);
    assert_eq!(etcd_err(apply(&mut s, Cmd::Txn(t))), EtcdError::NoSpace, "a put in a nested failure branch");
    let grant_req = LeaseGrantRequest { id: 6, ttl: 10 };
    assert_eq!(etcd_err(apply(&mut s, Cmd::LeaseGrant(grant_req))), EtcdError::NoSpace);
    assert_eq!(rev(&s), before, "refused commands change nothing");

    del(&mut s, "a", "");
    apply_txn(&mut s, txn(vec![], vec![op_del("b", ""), op_range("a", "z")], vec![])).unwrap();
    revoke(&mut s, lease).unwrap();
    let head = rev(&s);
    apply(&mut s, Cmd::Compaction(CompactionRequest { revision: head, physical: false })).unwrap();
    assert_eq!(value(&s, "a"), None);

    alarm(&mut s, AlarmAction::Deactivate, 1, AlarmType::Nospace);
    put(&mut s, "c", "3");
    assert_eq!(value(&s, "c").as_deref(), Some("3"));
}

#[test]
fn alarms_survive_reopen_and_travel_in_snapshots() {
    let backend = MemBackend::new();
    let mut s = KvStore::open(backend.clone()).unwrap();
    alarm(&mut s, AlarmAction::Activate, 4, AlarmType::Nospace);
    s.commit(Vec::new()).unwrap();
    let reopened = KvStore::open(backend).unwrap();
    assert_eq!(reopened.alarms().get(AlarmType::None), vec![nospace(4)]);

    let snap = s.snapshot().unwrap();
    let restored = KvStore::restore(MemBackend::new(), &snap).unwrap();
    assert_eq!(restored.alarms().get(AlarmType::None), vec![nospace(4)]);
    assert_eq!(restored.snapshot().unwrap(), snap);
}

#[test]
fn quota_cost_counts_keys_values_and_the_larger_txn_branch() {
    assert_eq!(quota_cost(&Cmd::Put(put_req("k", "vv"))), 256 + 3);
    let t = txn(vec![], vec![op_put("a", "1"), op_put("b", "2")], vec![op_put("c", "12345")]);
    assert_eq!(quota_cost(&Cmd::Txn(t.clone())), 2 * (256 + 2));
    assert!(adds_data(&Cmd::Txn(t)));
    assert!(!adds_data(&Cmd::Txn(txn(vec![], vec![op_del("a", "")], vec![op_range("a", "")]))));
    assert_eq!(quota_cost(&Cmd::LeaseGrant(LeaseGrantRequest { id: 1, ttl: 5 })), 64);
    assert_eq!(quota_cost(&Cmd::DeleteRange(del_req("a", ""))), 0);
}

#[test]
fn nospace_lets_the_servers_own_records_through() {
    let mut s = store();
    alarm(&mut s, AlarmAction::Activate, 1, AlarmType::Nospace);
    // A verdict record: the server's own command (no caller) writing only under /meridian/.
    apply(&mut s, Cmd::Put(put_req("/meridian/dc/dc-b", "{\"state\":\"down\"}"))).unwrap();
    assert_eq!(value(&s, "/meridian/dc/dc-b").as_deref(), Some("{\"state\":\"down\"}"));
    // The server's own writes elsewhere, or mixed, are still capped.
    assert_eq!(etcd_err(apply(&mut s, Cmd::Put(put_req("app", "1")))), EtcdError::NoSpace);
    let mixed = txn(vec![], vec![op_put("/meridian/active/db", "x"), op_put("app", "1")], vec![]);
    assert_eq!(etcd_err(apply(&mut s, Cmd::Txn(mixed))), EtcdError::NoSpace);
}
