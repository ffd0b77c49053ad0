//! Shared vocabulary of Meridian: typed identifiers, and the catalogue of etcd-compatible errors that every
//! layer reports and the server maps onto gRPC statuses. This crate does no I/O.

mod error;
mod ids;

pub use error::{EtcdError, StatusCode};
pub use ids::{DcName, LeaseId, MemberName, NodeId, Revision, ZoneName};
