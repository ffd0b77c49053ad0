//! The JSON shapes the HTTP API answers with, in Consul's spelling (filled by [`super::output`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::name::CheckId;
use crate::record::CheckRecord;

/// A record's revisions in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indexes {
    /// The revision that created it.
    pub create: i64,
    /// The revision that last changed it.
    pub modify: i64,
}

/// The published states of one instance's checks, by id, with their records' indexes.
pub type CheckStates = BTreeMap<CheckId, (CheckRecord, Indexes)>;

/// `Weights`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightsOut {
    /// The passing weight.
    pub passing: u16,
    /// The warning weight.
    pub warning: u16,
}

/// `Node` of a health entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeOut {
    /// Consul's node UUID; empty (Meridian's nodes have none).
    #[serde(rename = "ID")]
    pub id: String,
    /// The node's name.
    pub node: String,
    /// The node's address.
    pub address: String,
    /// The node's datacenter.
    pub datacenter: String,
    /// Always empty.
    pub tagged_addresses: BTreeMap<String, String>,
    /// Always empty.
    pub meta: BTreeMap<String, String>,
    /// The registration's create revision.
    pub create_index: i64,
    /// The registration's modify revision.
    pub modify_index: i64,
}

/// `Service` of a health entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceOut {
    /// The instance id.
    #[serde(rename = "ID")]
    pub id: String,
    /// The service name.
    pub service: String,
    /// The tags.
    pub tags: Vec<String>,
    /// The address.
    pub address: String,
    /// The meta.
    pub meta: BTreeMap<String, String>,
    /// The port.
    pub port: u16,
    /// The weights.
    pub weights: WeightsOut,
    /// Always false.
    pub enable_tag_override: bool,
    /// The registration's create revision.
    pub create_index: i64,
    /// The registration's modify revision.
    pub modify_index: i64,
}

/// A check, as `/v1/health/*` and `/v1/agent/checks` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// The node's name.
    pub node: String,
    /// The check id.
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// The check name.
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// The notes.
    pub notes: String,
    /// The output of the result that set the status.
    pub output: String,
    /// The instance id.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// The service name.
    pub service_name: String,
    /// The instance's tags.
    pub service_tags: Vec<String>,
    /// `http`, `tcp`, `grpc` or `ttl`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The probe interval (empty for TTL checks).
    pub interval: String,
    /// The probe timeout (empty for TTL checks).
    pub timeout: String,
    /// The check record's create revision (absent in `/v1/agent/checks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_index: Option<i64>,
    /// The check record's modify revision (absent in `/v1/agent/checks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modify_index: Option<i64>,
}

/// One entry of `/v1/health/service/<svc>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthEntry {
    /// The node.
    pub node: NodeOut,
    /// The instance.
    pub service: ServiceOut,
    /// Its checks.
    pub checks: Vec<HealthCheck>,
}

/// One entry of `/v1/catalog/service/<svc>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogService {
    /// Consul's node UUID; empty.
    #[serde(rename = "ID")]
    pub id: String,
    /// The node's name.
    pub node: String,
    /// The node's address.
    pub address: String,
    /// The datacenter.
    pub datacenter: String,
    /// Always empty.
    pub tagged_addresses: BTreeMap<String, String>,
    /// Always empty.
    pub node_meta: BTreeMap<String, String>,
    /// Always empty (a plain service).
    pub service_kind: String,
    /// The instance id.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// The service name.
    pub service_name: String,
    /// The tags.
    pub service_tags: Vec<String>,
    /// The address.
    pub service_address: String,
    /// The weights.
    pub service_weights: WeightsOut,
    /// The meta.
    pub service_meta: BTreeMap<String, String>,
    /// The port.
    pub service_port: u16,
    /// Always false.
    pub service_enable_tag_override: bool,
    /// The registration's create revision.
    pub create_index: i64,
    /// The registration's modify revision.
    pub modify_index: i64,
}

/// One value of `/v1/agent/services` (keyed by instance id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    /// The instance id.
    #[serde(rename = "ID")]
    pub id: String,
    /// The service name.
    pub service: String,
    /// The tags.
    pub tags: Vec<String>,
    /// The meta.
    pub meta: BTreeMap<String, String>,
    /// The port.
    pub port: u16,
    /// The address.
    pub address: String,
    /// The weights.
    pub weights: WeightsOut,
    /// Always false.
    pub enable_tag_override: bool,
    /// The datacenter.
    pub datacenter: String,
}
