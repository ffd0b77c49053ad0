//! Service discovery's pure core: what an instance and its checks are, how check results become published
//! health, which instances a client should use, and how all of it is stored and spoken in Consul's JSON. The
//! server feeds it (HTTP requests, probe results, the store's watch events, the membership, the datacenter
//! verdicts, RTTs and `now`) and performs what it returns (writes through the Raft log, answers, probes). This
//! crate does no I/O, reads no clock and draws no random numbers: time is a [`Timestamp`] argument and the
//! one shuffle takes a seed.
//!
//! Modules, bottom up:
//! - [`name`]: validated names and ids (`ServiceName`, `NodeName`, `InstanceId`, `CheckId`) and the references
//!   [`InstanceRef`] and [`CheckRef`];
//! - [`time`]: [`Timestamp`], and durations in Consul's notation (`10s`, `1m30s`);
//! - [`status`]: [`Status`], passing / warning / critical;
//! - [`instance`]: the [`Instance`] model and its limits;
//! - [`check`]: check definitions ([`CheckDef`]: HTTP, TCP, gRPC, TTL; no script checks), thresholds, and the
//!   judging of a probe's raw result;
//! - [`keys`] and [`record`]: where registrations and check states live under `/meridian/` and their JSON
//!   ([`Registration`], [`CheckRecord`]);
//! - [`machine`]: the check state machine ([`CheckState`]): thresholds, TTL expiry, flap damping,
//!   deregister-critical-after;
//! - [`health`]: an instance's aggregate health and DNS weight;
//! - [`mod@rank`]: the nearest-healthy, failover-aware answer for a client in a zone of a datacenter;
//! - [`hash`] and [`assign`]: which live member runs an instance's checks (rendezvous hashing);
//! - [`publish`]: batching and rate limiting of state changes on their way to the log;
//! - [`consul`]: Consul's request and response JSON, converted to and from the model.

pub mod assign;
pub mod check;
pub mod consul;
mod error;
pub mod hash;
pub mod health;
pub mod instance;
pub mod keys;
pub mod machine;
pub mod name;
pub mod publish;
pub mod rank;
pub mod record;
pub mod status;
pub mod time;

pub use assign::{LiveMember, is_runner, runner_for};
pub use check::{CheckDef, CheckKind, Outcome};
pub use error::{Error, Result};
pub use health::{aggregate, dns_weight};
pub use instance::{Instance, Weights};
pub use keys::{RegistryKey, parse_key};
pub use machine::{Change, CheckState, FlapDamping, MachineConfig, Observation, Step};
pub use name::{CheckId, CheckRef, InstanceId, InstanceRef, NodeName, ServiceName};
pub use publish::{Batcher, PublishConfig, Update};
pub use rank::{Candidate, Locality, Query, Ranked, ServicePolicy, rank};
pub use record::{CheckRecord, Registration};
pub use status::Status;
pub use time::Timestamp;
