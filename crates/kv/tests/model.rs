//! Property-style test: `KvStore` against a plain reference model (a list of every key version) over
//! thousands of pseudo-random operations, checking ranges at random revisions, watch history, applied
//! events, and that reopen and snapshot/restore change nothing observable.

use std::collections::BTreeMap;

use meridian_kv::{CommandResponse, Error, KvStore, MemBackend};
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::mvccpb::event::EventType;
use meridian_proto::mvccpb::{Event, KeyValue};
use meridian_types::{EtcdError, Revision};

/// splitmix64: tiny, seeded, good enough to drive the operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range_incl(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// One write in the model: a put (Some value) or a delete (None).
#[derive(Clone, Debug)]
struct Write {
    key: Vec<u8>,
    main: i64,
    value: Option<Vec<u8>>,
    lease: i64,
}

#[derive(Default)]
struct Model {
    history: Vec<Write>,
    current: i64,
    compact: i64,
    leases: Vec<i64>,
}

impl Model {
    fn new() -> Self {
        Model { current: 1, ..Default::default() }
    }

    /// Replays history and calls `f` for each write with the state before it.
    fn replay(
        &self,
        upto: i64,
        mut f: impl FnMut(&Write, Option<&KeyValue>, Option<&KeyValue>),
    ) -> BTreeMap<Vec<u8>, KeyValue> {
        let mut state: BTreeMap<Vec<u8>, KeyValue> = BTreeMap::new();
        for w in self.history.iter().take_while(|w| w.main <= upto) {
            let prev = state.get(&w.key).cloned();
            match &w.value {
                Some(v) => {
                    let (create, version) = prev.as_ref().map_or((w.main, 1), |p| (p.create_revision, p.version + 1));
                    state.insert(
                        w.key.clone(),
                        KeyValue {
                            key: w.key.clone(),
                            create_revision: create,
                            mod_revision: w.main,
                            version,
                            value: v.clone(),
                            lease: w.lease,
                        },
                    );
                }
                None => {
                    state.remove(&w.key);
                }
            }
            f(w, prev.as_ref(), state.get(&w.key));
        }
        state
    }

    fn state_at(&self, rev: i64) -> BTreeMap<Vec<u8>, KeyValue> {
        self.replay(rev, |_, _, _| {})
    }

    fn live(&self) -> BTreeMap<Vec<u8>, KeyValue> {
        self.state_at(self.current)
    }

    fn events_from(&self, start: i64) -> Vec<Event> {
        let mut out = Vec::new();
        self.replay(self.current, |w, prev, now| {
            if w.main < start {
                return;
            }
            out.push(match now {
                Some(kv) => Event { r#type: EventType::Put as i32, kv: Some(kv.clone()), prev_kv: prev.cloned() },
                None => Event {
                    r#type: EventType::Delete as i32,
                    kv: Some(KeyValue { key: w.key.clone(), mod_revision: w.main, ..Default::default() }),
                    prev_kv: prev.cloned(),
                },
            });
        });
        out
    }

    /// Records the writes of one command (already resolved to concrete keys) at the next revision.
    fn commit_writes(&mut self, writes: Vec<(Vec<u8>, Option<Vec<u8>>, i64)>) {
        if writes.is_empty() {
            return;
        }
        self.current += 1;
        for (key, value, lease) in writes {
            self.history.push(Write { key, main: self.current, value, lease });
        }
    }
}

const KEYS: u64 = 12;

fn key(i: u64) -> Vec<u8> {
    format!("k{i:02}").into_bytes()
}

fn put_op(k: &[u8], v: &[u8], lease: i64) -> PutRequest {
    PutRequest { key: k.to_vec(), value: v.to_vec(), lease, prev_kv: false, ignore_value: false, ignore_lease: false }
}

fn apply(s: &mut KvStore<MemBackend>, cmd: Cmd) -> Result<meridian_kv::Applied, Error> {
    s.apply(&RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() })
}

fn all_at(s: &KvStore<MemBackend>, rev: i64) -> Result<Vec<KeyValue>, Error> {
    Ok(s.range(&RangeRequest { key: vec![0], range_end: vec![0], revision: rev, ..Default::default() })?.kvs)
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut backend = MemBackend::new();
    let mut s = KvStore::open(backend.clone()).unwrap();
    let mut m = Model::new();
    let mut value_counter = 0u64;
    let mut next_lease = 1i64;

    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let live = m.live();
        value_counter += 1;
        let val = format!("v{value_counter}").into_bytes();
        let roll = rng.below(100);
        let (applied, writes) = if roll < 40 {
            let k = key(rng.below(KEYS));
            let lease = if !m.leases.is_empty() && rng.below(4) == 0 {
                m.leases[rng.below(m.leases.len() as u64) as usize]
            } else {
                0
            };
            let a = apply(&mut s, Cmd::Put(put_op(&k, &val, lease))).unwrap();
            (Some(a), vec![(k, Some(val), lease)])
        } else if roll < 55 {
            let k = key(rng.below(KEYS));
            let a = apply(
                &mut s,
                Cmd::DeleteRange(DeleteRangeRequest { key: k.clone(), range_end: vec![], prev_kv: true }),
            )
            .unwrap();
            let w = if live.contains_key(&k) { vec![(k, None, 0)] } else { vec![] };
            (Some(a), w)
        } else if roll < 65 {
            let (a, b) = (rng.below(KEYS), rng.below(KEYS + 1));
            let (start, end) = (key(a), key(b));
            let cmd =
                Cmd::DeleteRange(DeleteRangeRequest { key: start.clone(), range_end: end.clone(), prev_kv: false });
            let a = apply(&mut s, cmd).unwrap();
            let w = live.keys().filter(|k| **k >= start && **k < end).map(|k| (k.clone(), None, 0)).collect();
            (Some(a), w)
        } else if roll < 85 {
            // txn: compare one key's version (right or wrong), then put + delete on distinct keys.
            let ck = key(rng.below(KEYS));
            let actual = live.get(&ck).map_or(0, |kv| kv.version);
            let guess = if rng.below(2) == 0 { actual } else { actual + 1 };
            let (pk, dk, fk) = (rng.below(KEYS), rng.below(KEYS), rng.below(KEYS));
            let dk = if dk == pk { (dk + 1) % KEYS } else { dk };
            let (pk, dk, fk) = (key(pk), key(dk), key(fk));
            let t = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Version as i32,
                    key: ck.clone(),
                    target_union: Some(TargetUnion::Version(guess)),
                    range_end: vec![],
                }],
                success: vec![
                    RequestOp { request: Some(Request::RequestPut(put_op(&pk, &val, 0))) },
                    RequestOp {
                        request: Some(Request::RequestRange(RangeRequest { key: pk.clone(), ..Default::default() })),
                    },
                    RequestOp {
                        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                            key: dk.clone(),
                            range_end: vec![],
                            prev_kv: false,
                        })),
                    },
                ],
                failure: vec![RequestOp { request: Some(Request::RequestPut(put_op(&fk, &val, 0))) }],
            };
            let a = apply(&mut s, Cmd::Txn(t)).unwrap();
            let CommandResponse::Txn(resp) = &a.response else { panic!("{ctx}") };
            assert_eq!(resp.succeeded, guess == actual, "{ctx}");
            let w = if guess == actual {
                let mut w = vec![(pk, Some(val), 0)];
                if live.contains_key(&dk) {
                    w.push((dk, None, 0));
                }
                w
            } else {
                vec![(fk, Some(val), 0)]
            };
            (Some(a), w)
        } else if roll < 90 {
            let at = rng.range_incl(m.compact.max(1) - 1, m.current + 1);
            let res = apply(&mut s, Cmd::Compaction(CompactionRequest { revision: at, physical: false }));
            if at <= m.compact {
                assert_eq!(res, Err(Error::Etcd(EtcdError::Compacted)), "{ctx}");
            } else if at > m.current {
                assert_eq!(res, Err(Error::Etcd(EtcdError::FutureRevision)), "{ctx}");
            } else {
                res.unwrap();
                m.compact = at;
            }
            (None, vec![])
        } else if roll < 95 {
            let id = apply(&mut s, Cmd::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 0 })).unwrap();
            let CommandResponse::LeaseGrant(g) = id.response else { panic!("{ctx}") };
            assert_eq!(g.id, next_lease, "{ctx}");
            next_lease += 1;
            m.leases.push(g.id);
            (None, vec![])
        } else {
            if m.leases.is_empty() {
                continue;
            }
            let id = m.leases.remove(rng.below(m.leases.len() as u64) as usize);
            let a = apply(&mut s, Cmd::LeaseRevoke(LeaseRevokeRequest { id })).unwrap();
            let w = live.values().filter(|kv| kv.lease == id).map(|kv| (kv.key.clone(), None, 0)).collect();
            (Some(a), w)
        };

        let before = m.current;
        m.commit_writes(writes);
        assert_eq!(s.current_revision(), Revision(m.current), "{ctx}");
        if let Some(a) = applied {
            assert_eq!(a.revision, Revision(m.current), "{ctx}");
            let want = if m.current > before { m.events_from(m.current) } else { vec![] };
            assert_eq!(a.events, want, "{ctx}: applied events");
        }

        // Reads at a random retained revision, and the rejection just below it.
        let at = rng.range_incl(m.compact.max(1), m.current);
        let want: Vec<KeyValue> = m.state_at(at).into_values().collect();
        assert_eq!(all_at(&s, at).unwrap(), want, "{ctx}: range at {at}");
        if m.compact > 1 {
            assert_eq!(all_at(&s, m.compact - 1), Err(Error::Etcd(EtcdError::Compacted)), "{ctx}");
        }
        assert_eq!(all_at(&s, m.current + 1), Err(Error::Etcd(EtcdError::FutureRevision)), "{ctx}");

        if step % 25 == 0 {
            let start = rng.range_incl(m.compact + 1, m.current + 1);
            let got = s.events_since(Revision(start), &[0], &[0], 0).unwrap();
            assert_eq!(got, m.events_from(start), "{ctx}: events since {start}");
        }

        match rng.below(50) {
            0..=9 => s.commit(vec![]).unwrap(),
            10 => {
                // Reopen from the same "disk".
                s.commit(vec![("raft/applied".into(), step.to_be_bytes().to_vec())]).unwrap();
                let hash = s.hash_kv(Revision(0)).unwrap();
                s = KvStore::open(backend.clone()).unwrap();
                assert_eq!(s.hash_kv(Revision(0)).unwrap(), hash, "{ctx}: reopen");
            }
            11 => {
                // Move to a fresh backend through a snapshot (uncommitted changes included).
                let hash = s.hash_kv(Revision(0)).unwrap();
                let snap = s.snapshot().unwrap();
                backend = MemBackend::new();
                s = KvStore::restore(backend.clone(), &snap).unwrap();
                assert_eq!(s.hash_kv(Revision(0)).unwrap(), hash, "{ctx}: restore");
            }
            _ => {}
        }
    }
    // Final full comparison at every retained revision.
    for at in m.compact.max(1)..=m.current {
        let want: Vec<KeyValue> = m.state_at(at).into_values().collect();
        assert_eq!(all_at(&s, at).unwrap(), want, "seed {seed}: final range at {at}");
    }
    assert_eq!(
        s.events_since(Revision(m.compact + 1), &[0], &[0], 0).unwrap(),
        m.events_from(m.compact + 1),
        "seed {seed}: final history"
    );
}

#[test]
fn store_matches_reference_model_over_random_operations() {
    for seed in [1, 2, 3, 0xDEAD_BEEF] {
        run(seed, 1500);
    }
}

#[test]
fn replicas_applying_the_same_commands_hash_the_same() {
    // Two stores fed the same seed (one committing often, one never) end with equal hashes.
    let build = |commit_every: usize| {
        let mut rng = Rng(42);
        let mut s = KvStore::open(MemBackend::new()).unwrap();
        for i in 0..500 {
            let k = key(rng.below(KEYS));
            let cmd = if rng.below(4) == 0 {
                Cmd::DeleteRange(DeleteRangeRequest { key: k, range_end: vec![], prev_kv: false })
            } else {
                Cmd::Put(put_op(&k, format!("{i}").as_bytes(), 0))
            };
            apply(&mut s, cmd).unwrap();
            if commit_every > 0 && i % commit_every == 0 {
                s.commit(vec![]).unwrap();
            }
        }
        s.hash_kv(Revision(0)).unwrap()
    };
    assert_eq!(build(0), build(7));
}
