//! The etcd v3 gRPC services, one file each, all backed by the shared [`Member`](crate::member::Member).

pub mod auth;
pub mod cluster;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod oversize;
pub mod watch;
