//! The JSON the HTTP API answers with, in Consul's shapes: entries of `/v1/health/service/<svc>`
//! ([`HealthEntry`]: `Node`, `Service`, `Checks`), of `/v1/catalog/service/<svc>` ([`CatalogService`]), the
//! values of `/v1/agent/services` ([`AgentService`]) and of `/v1/agent/checks` and `/v1/health/checks`
//! ([`HealthCheck`]). `CreateIndex` and `ModifyIndex` are the store's create and modify revisions of the
//! records, which the server passes in as [`Indexes`].

use std::collections::BTreeMap;

use super::shapes::{
    AgentService, CatalogService, CheckStates, HealthCheck, HealthEntry, Indexes, NodeOut, ServiceOut, WeightsOut,
};
use crate::check::CheckDef;
use crate::instance::Instance;
use crate::record::{CheckRecord, Registration};
use crate::time::format_duration;

fn weights(i: &Instance) -> WeightsOut {
    WeightsOut { passing: i.weights.passing, warning: i.weights.warning }
}

/// A check of `instance` as shown: its published record, or its initial status if none was written yet.
pub fn health_check(instance: &Instance, def: &CheckDef, state: Option<&(CheckRecord, Indexes)>) -> HealthCheck {
    let schedule = def.kind.schedule();
    HealthCheck {
        node: instance.node.to_string(),
        check_id: def.id.to_string(),
        name: def.name.clone(),
        status: state.map_or(def.initial, |(r, _)| r.status).to_string(),
        notes: def.notes.clone(),
        output: state.map_or(String::new(), |(r, _)| r.output.clone()),
        service_id: instance.id.to_string(),
        service_name: instance.service.to_string(),
        service_tags: instance.tags.clone(),
        kind: def.kind.type_name().to_owned(),
        interval: schedule.map_or(String::new(), |s| format_duration(s.interval)),
        timeout: schedule.map_or(String::new(), |s| format_duration(s.timeout)),
        create_index: state.map(|(_, ix)| ix.create),
        modify_index: state.map(|(_, ix)| ix.modify),
    }
}

/// The `/v1/health/service/<svc>` entry of a registration stored at `indexes`, with its checks' `states`.
pub fn health_entry(reg: &Registration, indexes: Indexes, states: &CheckStates) -> HealthEntry {
    let i = &reg.instance;
    let mut checks: Vec<HealthCheck> = reg.checks.iter().map(|def| health_check(i, def, states.get(&def.id))).collect();
    for c in &mut checks {
        c.create_index.get_or_insert(indexes.create);
        c.modify_index.get_or_insert(indexes.modify);
    }
    HealthEntry {
        node: NodeOut {
            id: String::new(),
            node: i.node.to_string(),
            address: i.node_address.clone(),
            datacenter: i.dc.to_string(),
            tagged_addresses: BTreeMap::new(),
            meta: BTreeMap::new(),
            create_index: indexes.create,
            modify_index: indexes.modify,
        },
        service: ServiceOut {
            id: i.id.to_string(),
            service: i.service.to_string(),
            tags: i.tags.clone(),
            address: i.address.clone(),
            meta: i.meta.clone(),
            port: i.port,
            weights: weights(i),
            enable_tag_override: false,
            create_index: indexes.create,
            modify_index: indexes.modify,
        },
        checks,
    }
}

/// The `/v1/catalog/service/<svc>` entry of an instance registered at `indexes`.
pub fn catalog_service(i: &Instance, indexes: Indexes) -> CatalogService {
    CatalogService {
        id: String::new(),
        node: i.node.to_string(),
        address: i.node_address.clone(),
        datacenter: i.dc.to_string(),
        tagged_addresses: BTreeMap::new(),
        node_meta: BTreeMap::new(),
        service_kind: String::new(),
        service_id: i.id.to_string(),
        service_name: i.service.to_string(),
        service_tags: i.tags.clone(),
        service_address: i.address.clone(),
        service_weights: weights(i),
        service_meta: i.meta.clone(),
        service_port: i.port,
        service_enable_tag_override: false,
        create_index: indexes.create,
        modify_index: indexes.modify,
    }
}

/// The `/v1/agent/services` value of an instance.
pub fn agent_service(i: &Instance) -> AgentService {
    AgentService {
        id: i.id.to_string(),
        service: i.service.to_string(),
        tags: i.tags.clone(),
        meta: i.meta.clone(),
        port: i.port,
        address: i.address.clone(),
        weights: weights(i),
        enable_tag_override: false,
        datacenter: i.dc.to_string(),
    }
}

/// The `/v1/agent/checks` value of a check (no indexes, as Consul's agent endpoint has none).
pub fn agent_check(i: &Instance, def: &CheckDef, state: Option<&(CheckRecord, Indexes)>) -> HealthCheck {
    HealthCheck { create_index: None, modify_index: None, ..health_check(i, def, state) }
}
