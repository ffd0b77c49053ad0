//! Answers are cheap, but a DNS server answers the same few names many times a second: each computed
//! [`Answer`] is kept per (name, type, client locality) until its inputs move. Those inputs are the catalog
//! (its index moves with every registry change the member applies) and the surroundings (round-trip times,
//! datacenters left out: `down` or cut off from this member), which are re-read at most every
//! [`SURROUNDINGS_EVERY`] and count as moved only when the order of datacenters or the left-out set changes. A moved input drops the whole cache: the next queries
//! recompute from the new state, so an answer is never older than the member's catalog.
//!
//! [`AnswerCache`] is the pure part (generations and the bound); [`Answers`] reads the member's state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};
use meridian_registry::Locality;
use meridian_types::{DcName, ZoneName};
use parking_lot::Mutex;

use super::DnsSettings;
use super::records::{Answer, Scene, answer};
use super::respond::Question;
use crate::discovery::Discovery;
use crate::discovery::answer::{Surroundings, surroundings};

/// How often the round-trip times, verdicts and silent datacenters are re-read: a LAN heartbeat, so a
/// datacenter's loss reaches DNS answers as soon as the HTTP API's (which read them on every query).
pub const SURROUNDINGS_EVERY: Duration = Duration::from_millis(100);
/// The most answers kept; a full cache starts over.
pub const MAX_ENTRIES: usize = 16_384;

/// What an answer is cached under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    qname: Name,
    qtype: RecordType,
    dc: DcName,
    zone: Option<ZoneName>,
}

impl Key {
    /// The key of a question.
    pub fn of(q: &Question) -> Key {
        Key { qname: q.qname.clone(), qtype: q.qtype, dc: q.from.dc.clone(), zone: q.from.zone.clone() }
    }
}

/// Answers of one generation of the inputs.
#[derive(Debug, Default)]
pub struct AnswerCache {
    generation: (i64, u64),
    entries: HashMap<Key, Arc<Answer>>,
}

impl AnswerCache {
    /// The answer under `key` at `generation`, computed by `compute` if the cache has none (a new generation
    /// empties the cache first).
    pub fn get_or_compute(
        &mut self,
        key: Key,
        generation: (i64, u64),
        compute: impl FnOnce() -> Answer,
    ) -> Arc<Answer> {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
        if let Some(a) = self.entries.get(&key) {
            return a.clone();
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        let a = Arc::new(compute());
        self.entries.insert(key, a.clone());
        a
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What decides the order of tiers: the datacenters with a measured round-trip time, in its order, and the left-out set.
fn order_of(s: &Surroundings) -> (Vec<DcName>, Vec<DcName>) {
    let mut dcs: Vec<(u64, &DcName)> = s.rtt_ms.iter().map(|(dc, rtt)| (*rtt, dc)).collect();
    dcs.sort();
    (dcs.into_iter().map(|(_, dc)| dc.clone()).collect(), s.excluded.iter().cloned().collect())
}

struct Around {
    read_at: Instant,
    epoch: u64,
    order: (Vec<DcName>, Vec<DcName>),
    now: Arc<Surroundings>,
}

/// The member's answers: its catalog and surroundings, through the cache.
pub struct Answers {
    discovery: Arc<Discovery>,
    settings: DnsSettings,
    around: Mutex<Around>,
    cache: Mutex<AnswerCache>,
}

impl Answers {
    /// Answers from `discovery`'s catalog with `settings`.
    pub fn new(discovery: Arc<Discovery>, settings: DnsSettings) -> Answers {
        let now = Arc::new(surroundings(discovery.member()));
        let around = Around { read_at: Instant::now(), epoch: 0, order: order_of(&now), now };
        Answers { discovery, settings, around: Mutex::new(around), cache: Mutex::new(AnswerCache::default()) }
    }

    /// The settings.
    pub fn settings(&self) -> &DnsSettings {
        &self.settings
    }

    /// The member's own locality.
    pub fn own_locality(&self) -> Locality {
        crate::discovery::answer::own_locality(self.discovery.member())
    }

    fn surroundings(&self) -> (u64, Arc<Surroundings>) {
        let mut around = self.around.lock();
        if around.read_at.elapsed() >= SURROUNDINGS_EVERY {
            let now = Arc::new(surroundings(self.discovery.member()));
            let order = order_of(&now);
            if order != around.order {
                around.epoch += 1;
                around.order = order;
            }
            around.now = now;
            around.read_at = Instant::now();
        }
        (around.epoch, around.now.clone())
    }

    /// The answer to `q`.
    pub fn answer(&self, q: &Question) -> Arc<Answer> {
        let (epoch, around) = self.surroundings();
        let catalog = self.discovery.live().read();
        let generation = (catalog.index(), epoch);
        let scene = Scene { catalog: &catalog, surroundings: &around, settings: &self.settings };
        self.cache
            .lock()
            .get_or_compute(Key::of(q), generation, || answer(&scene, &q.lookup, &q.qname, q.qtype, &q.from))
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::ResponseCode;

    use super::*;

    fn key(name: &str, dc: &str) -> Key {
        Key { qname: Name::from_ascii(name).unwrap(), qtype: RecordType::SRV, dc: DcName::from(dc), zone: None }
    }

    fn answer_with(rcode: ResponseCode) -> Answer {
        Answer { rcode, answers: vec![], authority: vec![], additionals: vec![] }
    }

    #[test]
    fn an_answer_is_kept_per_locality_until_the_generation_moves() {
        let mut c = AnswerCache::default();
        let computed = std::cell::Cell::new(0);
        let get = |c: &mut AnswerCache, k: Key, g| {
            c.get_or_compute(k, g, || {
                computed.set(computed.get() + 1);
                answer_with(ResponseCode::NoError)
            })
        };
        get(&mut c, key("web.service.meridian.", "dc-a"), (5, 0));
        get(&mut c, key("WEB.service.meridian.", "dc-a"), (5, 0));
        assert_eq!(c.len(), 1, "names are keys case-insensitively");
        get(&mut c, key("web.service.meridian.", "dc-b"), (5, 0));
        assert_eq!(c.len(), 2, "another locality is another answer");
        get(&mut c, key("web.service.meridian.", "dc-a"), (6, 0));
        assert_eq!(c.len(), 1, "a catalog change drops every answer");
        get(&mut c, key("web.service.meridian.", "dc-a"), (6, 1));
        assert_eq!(computed.get(), 4);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = AnswerCache::default();
        for i in 0..=MAX_ENTRIES {
            c.get_or_compute(key(&format!("s{i}.service.meridian."), "dc-a"), (1, 0), || {
                answer_with(ResponseCode::NXDomain)
            });
        }
        assert!(c.len() <= MAX_ENTRIES);
    }

    #[test]
    fn only_the_order_of_datacenters_moves_the_surroundings() {
        let mut a = Surroundings::default();
        a.rtt_ms.insert(DcName::from("dc-a"), 0);
        a.rtt_ms.insert(DcName::from("dc-b"), 20);
        a.rtt_ms.insert(DcName::from("dc-c"), 30);
        let mut b = a.clone();
        b.rtt_ms.insert(DcName::from("dc-b"), 25);
        assert_eq!(order_of(&a), order_of(&b), "jitter that keeps the order");
        b.rtt_ms.insert(DcName::from("dc-b"), 35);
        assert_ne!(order_of(&a), order_of(&b));
        let mut d = a.clone();
        d.excluded.insert(DcName::from("dc-b"));
        assert_ne!(order_of(&a), order_of(&d));
    }
}
