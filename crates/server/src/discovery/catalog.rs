//! The member's in-memory catalog: every registration and check record under `/meridian/services/` and
//! `/meridian/health/`, with their store revisions, as of one revision of the local store. It is built from a
//! range read ([`Catalog::load`]) and then moved forward by the watch events of those keys
//! ([`Catalog::apply`]), whole revisions at a time, so what it holds is always exactly the store's registry
//! at [`Catalog::index`]. Pure: the follower task (`discovery::follow`) feeds it.
//!
//! A record that does not decode (written by a newer version, or by hand through a tool that bypassed the
//! reserved-keyspace check) is left out and counted, never a panic.

use std::collections::BTreeMap;

use meridian_proto::mvccpb::{Event, KeyValue, event::EventType};
use meridian_registry::consul::{CheckStates, Indexes};
use meridian_registry::{
    CheckId, CheckRecord, InstanceId, InstanceRef, NodeName, Registration, RegistryKey, ServiceName, Status, aggregate,
    parse_key,
};

/// One registration with the revisions of its key.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The registration.
    pub registration: Registration,
    /// Its create and modify revisions.
    pub indexes: Indexes,
}

/// The registry as of one store revision.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// By service, then by (node, id): one service's instances are one lookup, not a scan of the catalog.
    instances: BTreeMap<ServiceName, BTreeMap<(NodeName, InstanceId), Stored>>,
    checks: BTreeMap<InstanceRef, CheckStates>,
    /// The revision the catalog reflects.
    index: i64,
    /// The last revision that changed anything of a service (deletes included), for blocking queries.
    service_index: BTreeMap<ServiceName, i64>,
    /// The last revision that changed anything at all.
    changed: i64,
    undecodable: u64,
}

impl Catalog {
    /// A catalog of the key-values a range read returned at store revision `revision`.
    pub fn load(kvs: &[KeyValue], revision: i64) -> Catalog {
        let mut catalog = Catalog { index: revision, ..Catalog::default() };
        for kv in kvs {
            catalog.put(kv);
        }
        catalog.changed = catalog.service_index.values().copied().max().unwrap_or(0);
        catalog
    }

    /// Moves the catalog forward by the events of revisions from [`Catalog::index`] on, up to `revision`.
    /// Events below the current index were already applied and are skipped.
    pub fn apply(&mut self, events: &[Event], revision: i64) {
        for event in events {
            let Some(kv) = &event.kv else { continue };
            // Equal revisions still apply: a catch-up batch may split one revision's events over two responses.
            if kv.mod_revision < self.index {
                continue;
            }
            if event.r#type == EventType::Delete as i32 {
                self.delete(&kv.key, kv.mod_revision);
            } else {
                self.put(kv);
            }
        }
        self.index = self.index.max(revision);
    }

    fn put(&mut self, kv: &KeyValue) {
        let key = String::from_utf8_lossy(&kv.key);
        let indexes = Indexes { create: kv.create_revision, modify: kv.mod_revision };
        let service = match parse_key(&kv.key) {
            Ok(RegistryKey::Instance(r)) => match Registration::decode(&key, &kv.value) {
                Ok(registration) => {
                    let service = r.service.clone();
                    // A re-registration may drop checks: their records are deleted in the same transaction.
                    self.instances
                        .entry(r.service.clone())
                        .or_default()
                        .insert((r.node, r.id), Stored { registration, indexes });
                    service
                }
                Err(e) => return self.skip(&key, &e),
            },
            Ok(RegistryKey::Check(c)) => match CheckRecord::decode(&key, &kv.value) {
                Ok(record) => {
                    let service = c.instance.service.clone();
                    self.checks.entry(c.instance).or_default().insert(c.check, (record, indexes));
                    service
                }
                Err(e) => return self.skip(&key, &e),
            },
            Err(e) => return self.skip(&key, &e),
        };
        self.touch(service, kv.mod_revision);
    }

    fn delete(&mut self, key: &[u8], revision: i64) {
        let service = match parse_key(key) {
            Ok(RegistryKey::Instance(r)) => {
                if let Some(of_service) = self.instances.get_mut(&r.service) {
                    of_service.remove(&(r.node.clone(), r.id.clone()));
                    if of_service.is_empty() {
                        self.instances.remove(&r.service);
                    }
                }
                r.service
            }
            Ok(RegistryKey::Check(c)) => {
                if let Some(states) = self.checks.get_mut(&c.instance) {
                    states.remove(&c.check);
                    if states.is_empty() {
                        self.checks.remove(&c.instance);
                    }
                }
                c.instance.service
            }
            Err(_) => return,
        };
        self.touch(service, revision);
    }

    fn touch(&mut self, service: ServiceName, revision: i64) {
        let entry = self.service_index.entry(service).or_insert(0);
        *entry = (*entry).max(revision);
        self.changed = self.changed.max(revision);
    }

    fn skip(&mut self, key: &str, error: &meridian_registry::Error) {
        self.undecodable += 1;
        tracing::warn!(key, error = %error, "a registry record does not decode; left out of the catalog");
    }

    /// The store revision the catalog reflects.
    pub fn index(&self) -> i64 {
        self.index
    }

    /// The revision of the last change to anything in the registry (0 if none), for Consul's `X-Consul-Index`
    /// on catalog-wide answers. Never 0 in answers: callers use [`Catalog::answer_index`].
    pub fn changed(&self) -> i64 {
        self.changed
    }

    /// The revision of the last change to `service` (0 if it never existed here).
    pub fn service_changed(&self, service: &ServiceName) -> i64 {
        self.service_index.get(service).copied().unwrap_or(0)
    }

    /// An index to answer with: Consul's clients must never see 0, so a registry that never changed answers 1.
    pub fn answer_index(revision: i64) -> u64 {
        revision.max(1) as u64
    }

    /// Records that did not decode, since the catalog was loaded.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// Every registration, in (service, node, id) order.
    pub fn instances(&self) -> impl Iterator<Item = &Stored> {
        self.instances.values().flat_map(BTreeMap::values)
    }

    /// The registrations of `service`.
    pub fn service(&self, service: &ServiceName) -> impl Iterator<Item = &Stored> {
        self.instances.get(service).into_iter().flat_map(BTreeMap::values)
    }

    /// One registration.
    pub fn instance(&self, r: &InstanceRef) -> Option<&Stored> {
        self.instances.get(&r.service)?.get(&(r.node.clone(), r.id.clone()))
    }

    /// The published check states of an instance (empty if none were written).
    pub fn checks_of(&self, r: &InstanceRef) -> CheckStates {
        self.checks.get(r).cloned().unwrap_or_default()
    }

    /// One check's published record.
    pub fn check(&self, r: &InstanceRef, check: &CheckId) -> Option<&(CheckRecord, Indexes)> {
        self.checks.get(r)?.get(check)
    }

    /// An instance's aggregate health: the worst of its checks' published states, a check with no record yet
    /// counting as its initial status (an instance without checks is passing).
    pub fn health(&self, stored: &Stored) -> Status {
        let r = stored.registration.instance.reference();
        let states = self.checks.get(&r);
        aggregate(
            stored
                .registration
                .checks
                .iter()
                .map(|def| states.and_then(|s| s.get(&def.id)).map_or(def.initial, |(record, _)| record.status)),
        )
    }

    /// The names of every service with at least one registration, with the union of their instances' tags.
    pub fn services(&self) -> BTreeMap<ServiceName, Vec<String>> {
        let mut out: BTreeMap<ServiceName, Vec<String>> = BTreeMap::new();
        for stored in self.instances() {
            let i = &stored.registration.instance;
            let tags = out.entry(i.service.clone()).or_default();
            for t in &i.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
