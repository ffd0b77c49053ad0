//! The reserved keyspace at apply: the server writes `/meridian/`, clients cannot, and a client's delete of
//! every key leaves the reserved ones in place.

use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::meridianpb::{RaftCommand, RequestAuth};
use meridian_types::EtcdError;

use super::util::*;
use crate::CommandResponse;

fn client(s: &mut Store, cmd: Cmd) -> crate::Result<crate::Applied> {
    s.apply(&RaftCommand { auth: Some(RequestAuth::default()), cmd: Some(cmd), ..Default::default() })
}

#[test]
fn only_the_server_writes_reserved_keys() {
    let mut s = store();
    put(&mut s, "/meridian/dc/dc-a", r#"{"state":"up"}"#);
    assert_eq!(etcd_err(client(&mut s, Cmd::Put(put_req("/meridian/dc/dc-a", "x")))), EtcdError::ReservedKey);
    assert_eq!(
        etcd_err(client(&mut s, Cmd::DeleteRange(del_req("/meridian/dc/", "/meridian/dc0")))),
        EtcdError::ReservedKey
    );
    assert_eq!(get(&s, "/meridian/dc/dc-a").unwrap().value, br#"{"state":"up"}"#);
}

#[test]
fn a_client_deleting_every_key_spares_the_reserved_ones() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "/meridian/dc/dc-a", "v");
    put(&mut s, "z", "2");
    let applied = client(&mut s, Cmd::DeleteRange(del_req("\0", "\0"))).unwrap();
    let CommandResponse::DeleteRange(resp) = applied.response else { panic!("not a delete response") };
    assert_eq!(resp.deleted, 2, "only the client's keys go");
    assert!(get(&s, "a").is_none() && get(&s, "z").is_none());
    assert_eq!(get(&s, "/meridian/dc/dc-a").unwrap().value, b"v");
    // The server's own delete is not limited.
    del(&mut s, "/meridian/", "/meridian0");
    assert!(get(&s, "/meridian/dc/dc-a").is_none());
}
