//! What the discovery workload ([`crate::discovery_workload`]) and the runner's registry sampler
//! ([`crate::discovery_truth`]) record, for `checker::discovery` to judge: every registry write the clients
//! made with its outcome, every ranked answer a member gave with the inputs it was computed from, the committed
//! history of the registry keys (the ground truth), each member's catalog index over time, and when faults were
//! in force.

use meridian_registry::{CheckRef, InstanceRef, Status};
use serde::{Deserialize, Serialize};

/// The discovery workload's part of a history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryRecord {
    /// Every registry write a client asked a member's agent for, in invocation order.
    pub writes: Vec<RegistryWrite>,
    /// Every ranked answer, in the order they were given.
    pub answers: Vec<DiscoveryAnswer>,
    /// The committed registry keys, read from the members' stores as the run went: stretches of revisions over
    /// which every change is known.
    pub truth: Vec<TruthSegment>,
    /// Each founder's catalog index, sampled every millisecond of the client phase (each change once; `None`
    /// while the member is down or its discovery has not started).
    pub catalog_samples: Vec<CatalogSample>,
    /// The founders whose catalogs are sampled and judged for staleness.
    pub founders: Vec<String>,
    /// When a fault was in force: `(from, until)` in simulated nanoseconds.
    pub fault_spans: Vec<(u64, u64)>,
    /// When catalog sampling stopped.
    pub sampled_until: u64,
    /// How long after a write was acknowledged every founder clear of faults must have its catalog at the write's
    /// revision, in milliseconds.
    pub window_ms: u64,
    /// How long before the acknowledgement a founder must already have been up and clear of faults for its
    /// staleness to be judged, in milliseconds.
    pub settle_ms: u64,
}

/// One write through a member's discovery agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryWrite {
    /// Unique among the registry writes.
    pub id: u64,
    /// The client.
    pub client: u32,
    /// The member asked.
    pub member: String,
    /// When it was sent.
    pub invoke: u64,
    /// When it was answered (`None`: unknown outcome).
    pub complete: Option<u64>,
    /// What was asked.
    pub call: RegistryCall,
    /// What was answered.
    pub outcome: WriteOutcome,
}

/// A registry write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryCall {
    /// Register (or re-register) an instance with one TTL check starting at `initial`.
    Register {
        /// The instance.
        instance: InstanceRef,
        /// Its check's initial status.
        initial: Status,
    },
    /// Deregister an instance.
    Deregister {
        /// The instance.
        instance: InstanceRef,
    },
    /// A TTL report; `output` is unique in the run, so the committed record it wrote can be found.
    Report {
        /// The check.
        check: CheckRef,
        /// The status reported.
        status: Status,
        /// The report's note.
        output: String,
    },
}

/// What a registry write's client learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOutcome {
    /// No answer, or a store error that leaves its fate open.
    Unknown,
    /// A definite refusal (bad request, unknown instance or check).
    Failed {
        /// Why.
        reason: String,
    },
    /// Done; a registration answers its revision.
    Ok {
        /// The revision it was written at, when the call answers one.
        revision: Option<i64>,
    },
}

/// One ranked answer, as a member computed it from its catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryAnswer {
    /// The client that asked.
    pub client: u32,
    /// The member that answered.
    pub member: String,
    /// When (simulated nanoseconds).
    pub at: u64,
    /// The service asked for.
    pub service: String,
    /// Whether warning instances count as healthy.
    pub include_warning: bool,
    /// The failover threshold asked for.
    pub threshold: usize,
    /// The shuffle seed, if any.
    pub seed: Option<u64>,
    /// The member's locality: datacenter and zone.
    pub dc: String,
    /// The member's zone.
    pub zone: Option<String>,
    /// Round-trip times from the member's datacenter, in milliseconds, by datacenter.
    pub rtt_ms: Vec<(String, u64)>,
    /// Datacenters the member's store showed `down`.
    pub down: Vec<String>,
    /// The catalog's index: the store revision the answer reflects.
    pub index: i64,
    /// The answer, nearest first, with the health the catalog gave each instance.
    pub instances: Vec<(InstanceRef, Status)>,
}

/// A stretch of revisions `[from, to]` over which the registry is known at every revision: its keys at `from`,
/// then every change after it up to `to`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthSegment {
    /// The first revision covered.
    pub from: i64,
    /// The registry keys at `from`.
    pub base: Vec<TruthKv>,
    /// Every change after `from`, in revision order.
    pub events: Vec<TruthEvent>,
    /// The last revision covered.
    pub to: i64,
}

/// One registry key and its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthKv {
    /// The key.
    pub key: String,
    /// Its value (JSON).
    pub value: String,
}

/// One committed change of a registry key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthEvent {
    /// The revision.
    pub revision: i64,
    /// The key.
    pub key: String,
    /// The new value; `None` for a delete.
    pub value: Option<String>,
}

/// One founder's catalog index at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSample {
    /// When.
    pub at: u64,
    /// The member.
    pub member: String,
    /// Its catalog's index; `None` while it is down.
    pub index: Option<i64>,
}
