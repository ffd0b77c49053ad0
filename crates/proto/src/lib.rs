//! Protocol definitions for Meridian.
//!
//! This crate owns every protobuf schema Meridian speaks: the etcd v3 client
//! API (`etcdserverpb`, with its `mvccpb` and `authpb` dependencies), the etcd
//! lock and election services (`v3lockpb`, `v3electionpb`), and Meridian's own
//! replicated-log commands and peer service (`meridianpb`). The Rust code is
//! generated at build time from the `.proto` files under `proto/` using
//! `protox` and `tonic-prost-build`; field numbers and names match etcd's
//! published v3 API so that `etcdctl` and other etcd clients work unchanged.
//!
//! All packages live at the crate root because the generated code refers to
//! sibling packages through `super::` paths.

/// Stored key/value records and watch events (etcd `mvccpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// Users, roles and permissions (etcd `authpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// The etcd v3 client API: KV, Watch, Lease, Cluster, Maintenance and Auth.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// The etcd distributed lock service (etcd `v3lockpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// The etcd leader election service (etcd `v3electionpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// Meridian-internal Raft log commands and the peer-to-peer service.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod meridianpb {
    tonic::include_proto!("meridianpb");
}

/// The standard gRPC health checking protocol (`grpc.health.v1`), which the check runners call on gRPC instances.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod grpc_health_v1 {
    tonic::include_proto!("grpc.health.v1");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::etcdserverpb::{Compare, PutRequest, RequestOp, TxnRequest, compare, request_op};
    use super::meridianpb::{LeaseCheckpoint, RaftCommand, raft_command};

    fn sample_put() -> PutRequest {
        PutRequest { key: b"a".to_vec(), value: b"b".to_vec(), lease: 5, prev_kv: true, ..Default::default() }
    }

    #[test]
    fn put_request_round_trips() {
        let put = sample_put();
        let bytes = put.encode_to_vec();
        let decoded = PutRequest::decode(bytes.as_slice()).expect("decode PutRequest");
        assert_eq!(decoded, put);
    }

    #[test]
    fn put_request_matches_etcd_wire_format() {
        // key=1 (len-delimited), value=2 (len-delimited), lease=3 (varint), prev_kv=4 (varint).
        let expected: &[u8] = &[0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x18, 0x05, 0x20, 0x01];
        assert_eq!(sample_put().encode_to_vec(), expected);
    }

    #[test]
    fn raft_command_round_trips() {
        let txn = TxnRequest {
            compare: vec![Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Version as i32,
                key: b"a".to_vec(),
                target_union: Some(compare::TargetUnion::Version(0)),
                ..Default::default()
            }],
            success: vec![RequestOp { request: Some(request_op::Request::RequestPut(sample_put())) }],
            failure: vec![],
        };
        for cmd in [
            raft_command::Cmd::Put(sample_put()),
            raft_command::Cmd::Txn(txn),
            raft_command::Cmd::LeaseCheckpoint(LeaseCheckpoint { id: 7, remaining_ttl: 30 }),
        ] {
            let command = RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() };
            let bytes = command.encode_to_vec();
            let decoded = RaftCommand::decode(bytes.as_slice()).expect("decode RaftCommand");
            assert_eq!(decoded, command);
        }
    }
}
