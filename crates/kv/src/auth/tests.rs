//! The auth store through the log: etcd's answers to each change, the checks a command's caller must pass
//! (txn branches, compares, prev_kv, lease attach and revoke, admin commands), the auth revision, and
//! persistence through reopen and snapshots.

use meridian_proto::authpb::{Permission, permission};
use meridian_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGrantPermissionRequest,
    AuthRoleRevokePermissionRequest, AuthUserAddRequest, AuthUserDeleteRequest, AuthUserGrantRoleRequest,
    AuthUserRevokeRoleRequest, CompactionRequest, Compare, LeaseRevokeRequest, TxnRequest,
};
use meridian_proto::meridianpb::auth_command::Op;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::meridianpb::{AuthCommand, RaftCommand, RequestAuth};
use meridian_types::EtcdError;

use crate::tests::util::*;
use crate::{KvStore, MemBackend};

/// base64 of a fake hash: apply stores what it is given.
const HASH: &str = "aGFzaA==";

fn change(s: &mut Store, op: Op) -> Result<(), EtcdError> {
    as_user(s, None, Cmd::AuthChange(AuthCommand { op: Some(op) }))
}

fn as_user(s: &mut Store, who: Option<&RequestAuth>, cmd: Cmd) -> Result<(), EtcdError> {
    match s.apply(&RaftCommand { auth: who.cloned(), cmd: Some(cmd), ..Default::default() }) {
        Ok(_) => Ok(()),
        Err(crate::Error::Etcd(e)) => Err(e),
        Err(other) => panic!("not an etcd error: {other}"),
    }
}

fn user_add(name: &str) -> Op {
    Op::UserAdd(AuthUserAddRequest { name: name.into(), hashed_password: HASH.into(), ..Default::default() })
}

fn grant_role(user: &str, role: &str) -> Op {
    Op::UserGrantRole(AuthUserGrantRoleRequest { user: user.into(), role: role.into() })
}

fn grant_perm(role: &str, key: &str, end: &str, t: permission::Type) -> Op {
    Op::RoleGrantPermission(AuthRoleGrantPermissionRequest {
        name: role.into(),
        perm: Some(Permission { perm_type: t as i32, key: key.into(), range_end: end.into() }),
    })
}

/// root (with the root role) and alice, who may read and write the prefix `a/` and read `r`; auth on.
fn secured() -> Store {
    let mut s = store();
    for op in [
        user_add("root"),
        Op::RoleAdd(AuthRoleAddRequest { name: "root".into() }),
        grant_role("root", "root"),
        user_add("alice"),
        Op::RoleAdd(AuthRoleAddRequest { name: "app".into() }),
        grant_perm("app", "a/", "a0", permission::Type::Readwrite),
        grant_perm("app", "r", "", permission::Type::Read),
        grant_role("alice", "app"),
        Op::Enable(AuthEnableRequest {}),
    ] {
        change(&mut s, op).unwrap();
    }
    s
}

fn who(s: &Store, user: &str) -> RequestAuth {
    RequestAuth { username: user.into(), auth_revision: s.auth().revision() }
}

#[test]
fn changes_answer_with_etcds_errors() {
    let mut s = store();
    assert_eq!(change(&mut s, Op::Enable(AuthEnableRequest {})), Err(EtcdError::RootUserNotExist));
    change(&mut s, user_add("root")).unwrap();
    assert_eq!(change(&mut s, Op::Enable(AuthEnableRequest {})), Err(EtcdError::RootRoleNotExist));
    assert_eq!(change(&mut s, user_add("root")), Err(EtcdError::UserAlreadyExist));
    assert_eq!(change(&mut s, user_add("")), Err(EtcdError::UserEmpty));
    assert_eq!(change(&mut s, grant_role("root", "nope")), Err(EtcdError::RoleNotFound));
    assert_eq!(change(&mut s, grant_role("nobody", "root")), Err(EtcdError::UserNotFound));
    // The root role need not exist to be granted (etcd's rule), and granting twice is not an error.
    change(&mut s, grant_role("root", "root")).unwrap();
    change(&mut s, grant_role("root", "root")).unwrap();
    assert_eq!(change(&mut s, Op::RoleAdd(AuthRoleAddRequest { name: String::new() })), Err(EtcdError::RoleEmpty));
    change(&mut s, Op::RoleAdd(AuthRoleAddRequest { name: "root".into() })).unwrap();
    assert_eq!(
        change(&mut s, Op::RoleAdd(AuthRoleAddRequest { name: "root".into() })),
        Err(EtcdError::RoleAlreadyExist)
    );
    assert_eq!(
        change(&mut s, Op::RoleGrantPermission(AuthRoleGrantPermissionRequest { name: "root".into(), perm: None })),
        Err(EtcdError::PermissionNotGiven)
    );
    let revoke = |role: &str, key: &str| {
        Op::RoleRevokePermission(AuthRoleRevokePermissionRequest {
            role: role.into(),
            key: key.into(),
            range_end: vec![],
        })
    };
    assert_eq!(change(&mut s, revoke("root", "k")), Err(EtcdError::PermissionNotGranted));
    assert_eq!(change(&mut s, revoke("ghost", "k")), Err(EtcdError::RoleNotFound));
    let revoke_role =
        |role: &str| Op::UserRevokeRole(AuthUserRevokeRoleRequest { name: "root".into(), role: role.into() });
    assert_eq!(change(&mut s, revoke_role("other")), Err(EtcdError::RoleNotGranted));
    change(&mut s, Op::Enable(AuthEnableRequest {})).unwrap();
    assert!(s.auth().enabled());
    // With auth on, root cannot lose root.
    let root = who(&s, "root");
    let admin = |s: &mut Store, op: Op| as_user(s, Some(&root), Cmd::AuthChange(AuthCommand { op: Some(op) }));
    assert_eq!(admin(&mut s, revoke_role("root")), Err(EtcdError::InvalidAuthMgmt));
    assert_eq!(
        admin(&mut s, Op::UserDelete(AuthUserDeleteRequest { name: "root".into() })),
        Err(EtcdError::InvalidAuthMgmt)
    );
    assert_eq!(
        admin(&mut s, Op::RoleDelete(AuthRoleDeleteRequest { role: "root".into() })),
        Err(EtcdError::InvalidAuthMgmt)
    );
    // A plain password never enters the store.
    let plain = Op::UserAdd(AuthUserAddRequest { name: "p".into(), password: "secret".into(), ..Default::default() });
    assert!(matches!(admin(&mut s, plain), Err(EtcdError::Internal(_))));
    assert!(s.auth().user("p").is_none());
}

#[test]
fn role_permissions_stay_sorted_and_regrant_changes_the_type() {
    let mut s = store();
    change(&mut s, Op::RoleAdd(AuthRoleAddRequest { name: "r".into() })).unwrap();
    change(&mut s, grant_perm("r", "m", "", permission::Type::Read)).unwrap();
    change(&mut s, grant_perm("r", "b", "c", permission::Type::Write)).unwrap();
    change(&mut s, grant_perm("r", "m", "", permission::Type::Readwrite)).unwrap();
    let perms = s.auth().role_permissions("r").unwrap();
    let keys: Vec<_> = perms.iter().map(|p| (p.key.clone(), p.perm_type)).collect();
    assert_eq!(
        keys,
        vec![(b"b".to_vec(), permission::Type::Write as i32), (b"m".to_vec(), permission::Type::Readwrite as i32)]
    );
}

#[test]
fn every_change_but_enable_bumps_the_auth_revision() {
    let mut s = store();
    let r0 = s.auth().revision();
    change(&mut s, user_add("root")).unwrap();
    change(&mut s, grant_role("root", "root")).unwrap();
    assert_eq!(s.auth().revision(), r0 + 2);
    change(&mut s, Op::Enable(AuthEnableRequest {})).unwrap();
    assert_eq!(s.auth().revision(), r0 + 2, "enable keeps the revision");
    assert_eq!(change(&mut s, user_add("root")), Err(EtcdError::UserAlreadyExist));
    assert_eq!(s.auth().revision(), r0 + 2, "a refused change keeps the revision");
}

#[test]
fn commands_are_judged_by_every_range_they_touch() {
    let mut s = secured();
    let alice = who(&s, "alice");
    let put = |k: &str| Cmd::Put(put_req(k, "v"));
    assert_eq!(as_user(&mut s, Some(&alice), put("a/1")), Ok(()));
    assert_eq!(as_user(&mut s, Some(&alice), put("b")), Err(EtcdError::PermissionDenied));
    assert_eq!(as_user(&mut s, Some(&alice), put("r")), Err(EtcdError::PermissionDenied), "r is read-only");
    let mut with_prev = put_req("a/2", "v");
    with_prev.prev_kv = true;
    assert_eq!(as_user(&mut s, Some(&alice), Cmd::Put(with_prev)), Ok(()));
    assert_eq!(as_user(&mut s, Some(&alice), Cmd::DeleteRange(del_req("a/", "a0"))), Ok(()));
    assert_eq!(as_user(&mut s, Some(&alice), Cmd::DeleteRange(del_req("a/", "b"))), Err(EtcdError::PermissionDenied));
    // A txn is refused for an op in the branch that would not run, for a compare, and for a nested op.
    let txn = |compare: &str, success: Vec<_>, failure: Vec<_>| {
        Cmd::Txn(TxnRequest { compare: vec![Compare { key: compare.into(), ..Default::default() }], success, failure })
    };
    assert_eq!(as_user(&mut s, Some(&alice), txn("r", vec![op_put("a/x", "1")], vec![])), Ok(()));
    assert_eq!(
        as_user(&mut s, Some(&alice), txn("r", vec![op_put("a/x", "1")], vec![op_put("z", "1")])),
        Err(EtcdError::PermissionDenied)
    );
    assert_eq!(as_user(&mut s, Some(&alice), txn("secret", vec![], vec![])), Err(EtcdError::PermissionDenied));
    let nested = meridian_proto::etcdserverpb::RequestOp {
        request: Some(meridian_proto::etcdserverpb::request_op::Request::RequestTxn(TxnRequest {
            success: vec![op_del("z", "")],
            ..Default::default()
        })),
    };
    assert_eq!(as_user(&mut s, Some(&alice), txn("r", vec![nested], vec![])), Err(EtcdError::PermissionDenied));
    assert_eq!(value(&s, "z"), None);
    // Admin commands need root; commands without credentials name no user.
    let compaction = Cmd::Compaction(CompactionRequest { revision: 1, physical: false });
    assert_eq!(as_user(&mut s, Some(&alice), compaction.clone()), Err(EtcdError::PermissionDenied));
    let root = who(&s, "root");
    assert_eq!(as_user(&mut s, Some(&root), compaction), Ok(()));
    let anonymous = RequestAuth { username: String::new(), auth_revision: 0 };
    assert_eq!(as_user(&mut s, Some(&anonymous), put("a/1")), Err(EtcdError::UserEmpty));
    // The server's own commands carry no caller and pass.
    assert_eq!(as_user(&mut s, None, put("b")), Ok(()));
}

#[test]
fn a_lease_holding_a_key_the_caller_cannot_write_cannot_be_extended_or_revoked_by_them() {
    let mut s = secured();
    grant(&mut s, 7, 60).unwrap();
    put_lease(&mut s, "b", "root's", 7);
    let alice = who(&s, "alice");
    let mut attach = put_req("a/1", "v");
    attach.lease = 7;
    assert_eq!(as_user(&mut s, Some(&alice), Cmd::Put(attach)), Err(EtcdError::PermissionDenied));
    assert_eq!(
        as_user(&mut s, Some(&alice), Cmd::LeaseRevoke(LeaseRevokeRequest { id: 7 })),
        Err(EtcdError::PermissionDenied)
    );
    assert_eq!(value(&s, "b").as_deref(), Some("root's"));
}

#[test]
fn a_stale_auth_revision_is_refused_and_a_revoked_role_stops_the_next_command() {
    let mut s = secured();
    let alice = who(&s, "alice");
    let root = who(&s, "root");
    let revoke = Op::UserRevokeRole(AuthUserRevokeRoleRequest { name: "alice".into(), role: "app".into() });
    as_user(&mut s, Some(&root), Cmd::AuthChange(AuthCommand { op: Some(revoke) })).unwrap();
    assert_eq!(as_user(&mut s, Some(&alice), Cmd::Put(put_req("a/1", "v"))), Err(EtcdError::AuthOldRevision));
    let fresh = who(&s, "alice");
    assert_eq!(as_user(&mut s, Some(&fresh), Cmd::Put(put_req("a/1", "v"))), Err(EtcdError::PermissionDenied));
}

#[test]
fn the_auth_store_survives_reopen_and_snapshots() {
    let mut s = secured();
    s.commit(Vec::new()).unwrap();
    let snapshot = s.snapshot().unwrap();
    let want = s.auth().clone();
    let reopened = KvStore::open(s.backend.clone()).unwrap();
    assert_eq!(reopened.auth(), &want);
    let restored = KvStore::restore(MemBackend::new(), &snapshot).unwrap();
    assert_eq!(restored.auth(), &want);
    assert!(restored.auth().enabled());
    assert_eq!(restored.auth().user_roles("alice").unwrap(), vec!["app".to_owned()]);
}
