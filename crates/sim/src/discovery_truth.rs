//! The runner's side of the discovery check: between simulation steps it reads the committed registry keys from
//! the most advanced running member's store (every change since the last read, through the store's own history),
//! samples each founder's catalog index, and notes when faults are in force.
//!
//! The run compacts the store as it goes, so the history is read incrementally, every few milliseconds: a
//! member compacts only what it has applied, and a read that finds the next revision already compacted (a member
//! that caught up in one go, or installed a snapshot) starts a new [`TruthSegment`] from a full read of the
//! registry at the store's current revision. Revisions between two segments are unknown, and answers at them
//! are not judged.

use std::collections::BTreeMap;
use std::sync::Arc;

use meridian_proto::etcdserverpb::RangeRequest;
use meridian_proto::mvccpb::event::EventType;
use meridian_registry::keys::{HEALTH_PREFIX, SERVICES_PREFIX};
use meridian_server::discovery::Discovery;
use meridian_types::Revision;
use meridian_types::reserved::prefix_end;
use parking_lot::Mutex;

use crate::cluster::SimCluster;
use crate::discovery_record::{CatalogSample, DiscoveryRecord, TruthEvent, TruthKv, TruthSegment};

/// Every running member's discovery, by member name; a restarted member puts in its new one.
pub type Discoveries = Arc<Mutex<BTreeMap<String, Arc<Discovery>>>>;

/// What the runner gathers.
#[derive(Debug, Default)]
pub struct Sampler {
    truth: Vec<TruthSegment>,
    /// The next revision to read.
    next: i64,
    samples: Vec<CatalogSample>,
    last: BTreeMap<String, Option<i64>>,
    fault_spans: Vec<(u64, u64)>,
    fault_open: Option<u64>,
    sampled_until: u64,
}

impl Sampler {
    /// Nothing read yet.
    pub fn new() -> Self {
        Sampler::default()
    }

    /// Reads what was committed to the registry since the last read.
    pub fn read_truth(&mut self, cluster: &SimCluster) {
        let kv = {
            let nodes = cluster.registry.lock();
            let mut best: Option<(i64, _)> = None;
            for node in nodes.values() {
                let current = node.kv().read().current_revision().0;
                if best.as_ref().is_none_or(|(b, _)| current > *b) {
                    best = Some((current, node.kv().clone()));
                }
            }
            match best {
                Some((_, kv)) => kv,
                None => return,
            }
        };
        let store = kv.read();
        let current = store.current_revision().0;
        if !self.truth.is_empty() && current < self.next {
            return;
        }
        let end = prefix_end(SERVICES_PREFIX);
        let compacted = store.compact_revision().0;
        if self.truth.is_empty() && compacted == 0 {
            self.truth.push(TruthSegment { from: 0, base: Vec::new(), events: Vec::new(), to: 0 });
            self.next = 1;
        }
        if self.truth.is_empty() || compacted >= self.next {
            let req = RangeRequest { key: HEALTH_PREFIX.as_bytes().to_vec(), range_end: end, ..Default::default() };
            let Ok(resp) = store.range(&req) else { return };
            let base = resp.kvs.into_iter().map(|kv| TruthKv { key: text(&kv.key), value: text(&kv.value) }).collect();
            self.truth.push(TruthSegment { from: current, base, events: Vec::new(), to: current });
            self.next = current + 1;
            return;
        }
        let Ok(events) = store.events_since(Revision(self.next), HEALTH_PREFIX.as_bytes(), &end, 0) else { return };
        let segment = self.truth.last_mut().expect("a segment was started");
        for event in events {
            let Some(kv) = event.kv else { continue };
            let value = (event.r#type != EventType::Delete as i32).then(|| text(&kv.value));
            segment.events.push(TruthEvent { revision: kv.mod_revision, key: text(&kv.key), value });
        }
        segment.to = current;
        self.next = current + 1;
    }

    /// Samples each founder's catalog index at `at`.
    pub fn sample_catalogs(&mut self, cluster: &SimCluster, discoveries: &Discoveries, at: u64) {
        self.sampled_until = at;
        for m in &cluster.members {
            let running = cluster.registry.lock().contains_key(&m.name);
            let index = if running { discoveries.lock().get(&m.name).map(|d| d.live().read().index()) } else { None };
            if self.last.get(&m.name) != Some(&index) {
                self.last.insert(m.name.clone(), index);
                self.samples.push(CatalogSample { at, member: m.name.clone(), index });
            }
        }
    }

    /// Notes whether a fault is in force at `at`.
    pub fn fault(&mut self, at: u64, active: bool) {
        match (active, self.fault_open) {
            (true, None) => self.fault_open = Some(at),
            (false, Some(from)) => {
                self.fault_spans.push((from, at));
                self.fault_open = None;
            }
            _ => {}
        }
    }

    /// Puts what was gathered into `record`.
    pub fn finish(mut self, record: &mut DiscoveryRecord, founders: Vec<String>, window_ms: u64, settle_ms: u64) {
        if let Some(from) = self.fault_open.take() {
            self.fault_spans.push((from, self.sampled_until));
        }
        record.truth = self.truth;
        record.catalog_samples = self.samples;
        record.founders = founders;
        record.fault_spans = self.fault_spans;
        record.sampled_until = self.sampled_until;
        record.window_ms = window_ms;
        record.settle_ms = settle_ms;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
