//! Shared vocabulary of Meridian: typed identifiers, and the catalogue of etcd-compatible errors that every
//! layer reports and the server maps onto gRPC statuses, plus the timing and WAN-emulation settings shared by
//! configuration files, and the seeded generator (`SplitMix64`) behind every reproducible run. This crate does no I/O.

mod error;
pub mod failover_group;
mod ids;
pub mod reserved;
pub mod rng;
mod timing;
pub mod topology;
pub mod wan;

pub use error::{EtcdError, StatusCode};
pub use failover_group::{Failback, FailoverGroupSpec, GroupError, Hook, HookTarget, WebhookUrl};
pub use ids::{DcName, GroupName, LeaseId, MemberName, NodeId, Revision, ZoneName};
pub use rng::SplitMix64;
pub use timing::{TimingConfig, TimingPreset};
pub use topology::{MemberSpec, PlacementPolicy, Role, Topology, TopologyError, TopologyWarning};
