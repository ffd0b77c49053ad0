//! Replicated leases: grant (ids, TTL bounds), attach/detach through puts and deletes, revoke,
//! checkpoint, persistence.

use meridian_proto::meridianpb::LeaseCheckpoint;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::mvccpb::event::EventType;
use meridian_types::{EtcdError, LeaseId};

use super::util::*;
use crate::{CommandResponse, Error, KvStore, MemBackend};

fn lease_keys(s: &Store, id: i64) -> Vec<String> {
    s.lease(LeaseId(id)).unwrap().keys.into_iter().map(|k| String::from_utf8(k).unwrap()).collect()
}

#[test]
fn lease_grant_with_id_zero_picks_deterministic_unused_ids() {
    let mut s = store();
    assert_eq!(grant(&mut s, 2, 10), Ok(2));
    assert_eq!(grant(&mut s, 0, 10), Ok(1));
    assert_eq!(grant(&mut s, 0, 10), Ok(3), "skips the explicitly granted id 2");
    revoke(&mut s, 3).unwrap();
    assert_eq!(grant(&mut s, 0, 10), Ok(4), "auto ids are never reused");
}

#[test]
fn lease_grant_rules_follow_etcd() {
    let mut s = store();
    assert_eq!(grant(&mut s, 5, 10), Ok(5));
    assert_eq!(grant(&mut s, 5, 10), Err(Error::Etcd(EtcdError::LeaseExists)));
    assert_eq!(grant(&mut s, 6, crate::MAX_LEASE_TTL + 1), Err(Error::Etcd(EtcdError::LeaseTtlTooLarge)));
    // TTL is checked before existence, as in etcd.
    assert_eq!(grant(&mut s, 5, crate::MAX_LEASE_TTL + 1), Err(Error::Etcd(EtcdError::LeaseTtlTooLarge)));
    assert_eq!(grant(&mut s, 7, crate::MAX_LEASE_TTL), Ok(7));
    assert_eq!(rev(&s), 1, "lease grants do not bump the revision");
}

#[test]
fn lease_grant_raises_small_ttl_to_minimum() {
    let mut s = store();
    for (id, ttl) in [(1, 0), (2, -5)] {
        let a = apply(&mut s, Cmd::LeaseGrant(meridian_proto::etcdserverpb::LeaseGrantRequest { ttl, id })).unwrap();
        let CommandResponse::LeaseGrant(g) = a.response else { panic!() };
        assert_eq!(g.ttl, crate::MIN_LEASE_TTL);
        assert_eq!(s.lease(LeaseId(id)).unwrap().ttl, crate::MIN_LEASE_TTL);
    }
}

#[test]
fn put_moves_key_between_leases_and_delete_detaches() {
    let mut s = store();
    grant(&mut s, 1, 10).unwrap();
    grant(&mut s, 2, 10).unwrap();
    put_lease(&mut s, "a", "v", 1);
    put_lease(&mut s, "b", "v", 1);
    assert_eq!(lease_keys(&s, 1), ["a", "b"]);
    put_lease(&mut s, "a", "v", 2);
    assert_eq!((lease_keys(&s, 1), lease_keys(&s, 2)), (vec!["b".to_string()], vec!["a".to_string()]));
    put(&mut s, "a", "no lease");
    assert!(lease_keys(&s, 2).is_empty());
    del(&mut s, "b", "");
    assert!(lease_keys(&s, 1).is_empty());
}

#[test]
fn lease_revoke_deletes_attached_keys_at_one_revision() {
    let mut s = store();
    grant(&mut s, 9, 10).unwrap();
    put_lease(&mut s, "c", "3", 9);
    put_lease(&mut s, "a", "1", 9);
    put(&mut s, "free", "x");
    put_lease(&mut s, "b", "2", 9);
    let a = revoke(&mut s, 9).unwrap();
    assert_eq!(a.revision.0, 6);
    let CommandResponse::LeaseRevoke(resp) = &a.response else { panic!() };
    assert_eq!(resp.header.as_ref().unwrap().revision, 6);
    let evs: Vec<(i32, String, i64)> = a
        .events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (e.r#type, String::from_utf8(kv.key.clone()).unwrap(), kv.mod_revision)
        })
        .collect();
    let d = EventType::Delete as i32;
    assert_eq!(evs, vec![(d, "a".into(), 6), (d, "b".into(), 6), (d, "c".into(), 6)]);
    assert_eq!(keys_of(&s.range(&range_req("\0", "\0")).unwrap().kvs), ["free"]);
    assert_eq!(s.lease(LeaseId(9)), None);
    assert_eq!(s.events_since(r(6), b"\0", b"\0", 0).unwrap(), a.events);
}

#[test]
fn lease_revoke_unknown_is_not_found_and_empty_lease_keeps_revision() {
    let mut s = store();
    assert_eq!(etcd_err(revoke(&mut s, 4)), EtcdError::LeaseNotFound);
    grant(&mut s, 4, 10).unwrap();
    let a = revoke(&mut s, 4).unwrap();
    assert!(a.events.is_empty());
    assert_eq!((a.revision.0, rev(&s)), (1, 1));
    let mut p = put_req("k", "v");
    p.lease = 4;
    assert_eq!(etcd_err(apply(&mut s, Cmd::Put(p))), EtcdError::LeaseNotFound);
}

#[test]
fn lease_checkpoint_records_remaining_ttl_and_ignores_unknown_leases() {
    let mut s = store();
    grant(&mut s, 3, 60).unwrap();
    let cp = |id, remaining_ttl| Cmd::LeaseCheckpoint(LeaseCheckpoint { id, remaining_ttl });
    assert_eq!(apply(&mut s, cp(3, 42)).unwrap().response, CommandResponse::LeaseCheckpoint);
    assert_eq!(s.lease(LeaseId(3)).unwrap().remaining, Some(42));
    assert!(apply(&mut s, cp(99, 1)).is_ok());
    assert_eq!(s.leases().len(), 1);
}

#[test]
fn leases_and_attachments_survive_reopen() {
    let be = MemBackend::new();
    let mut s = KvStore::open(be.clone()).unwrap();
    grant(&mut s, 0, 30).unwrap();
    grant(&mut s, 8, 5).unwrap();
    put_lease(&mut s, "k", "v", 8);
    apply(&mut s, Cmd::LeaseCheckpoint(LeaseCheckpoint { id: 8, remaining_ttl: 4 })).unwrap();
    grant(&mut s, 20, 5).unwrap();
    revoke(&mut s, 20).unwrap();
    s.commit(vec![]).unwrap();
    let mut reopened = KvStore::open(be).unwrap();
    assert_eq!(reopened.leases(), s.leases());
    assert_eq!(lease_keys(&reopened, 8), ["k"]);
    assert_eq!(reopened.lease(LeaseId(8)).unwrap().remaining, Some(4));
    assert_eq!(grant(&mut reopened, 0, 30), Ok(2), "the id counter is persisted");
}
