//! Test support: a terse history builder and a seeded generator of linearizable histories.

use std::collections::HashMap;

use crate::checker::{CheckOptions, Report, check};
use crate::history::{Call, History, Operation, Outcome};

/// Byte string from text.
pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Builds a history one operation at a time; every method returns the new operation's id.
#[derive(Default)]
pub struct Hist {
    pub h: History,
}

impl Hist {
    pub fn new() -> Self {
        Hist::default()
    }

    pub fn op(&mut self, client: u32, (invoke, complete): (u64, Option<u64>), call: Call, outcome: Outcome) -> u64 {
        let id = self.h.ops.len() as u64 + 1;
        self.h.ops.push(Operation { id, client, invoke, complete, call, outcome });
        id
    }

    pub fn put(&mut self, client: u32, t: (u64, u64), key: &str, value: &str, revision: i64) -> u64 {
        let call = Call::Put { key: b(key), value: b(value), lease: None };
        self.op(client, (t.0, Some(t.1)), call, Outcome::Put { revision })
    }

    pub fn put_leased(&mut self, client: u32, t: (u64, u64), key: &str, value: &str, lease: i64, revision: i64) -> u64 {
        let call = Call::Put { key: b(key), value: b(value), lease: Some(lease) };
        self.op(client, (t.0, Some(t.1)), call, Outcome::Put { revision })
    }

    pub fn put_unknown(&mut self, client: u32, invoke: u64, key: &str, value: &str) -> u64 {
        let call = Call::Put { key: b(key), value: b(value), lease: None };
        self.op(client, (invoke, None), call, Outcome::Unknown)
    }

    pub fn put_failed(&mut self, client: u32, t: (u64, u64), key: &str, value: &str) -> u64 {
        let call = Call::Put { key: b(key), value: b(value), lease: None };
        self.op(client, (t.0, Some(t.1)), call, Outcome::Failed { reason: "rejected".into() })
    }

    pub fn get(&mut self, client: u32, t: (u64, u64), key: &str, value: Option<&str>, mod_rev: i64, rev: i64) -> u64 {
        let outcome = Outcome::Get { value: value.map(b), mod_revision: mod_rev, revision: rev };
        self.op(client, (t.0, Some(t.1)), Call::Get { key: b(key) }, outcome)
    }

    /// Like [`Hist::get`], but a serializable get answered by member "m".
    pub fn local_get(
        &mut self,
        client: u32,
        t: (u64, u64),
        key: &str,
        value: Option<&str>,
        mod_rev: i64,
        rev: i64,
    ) -> u64 {
        let id = self.get(client, t, key, value, mod_rev, rev);
        self.h.ops.last_mut().expect("just added").call = Call::LocalGet { key: b(key), member: "m".into() };
        id
    }

    pub fn del(&mut self, client: u32, t: (u64, u64), key: &str, deleted: i64, revision: i64) -> u64 {
        self.op(client, (t.0, Some(t.1)), Call::Delete { key: b(key) }, Outcome::Delete { deleted, revision })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn cas(
        &mut self,
        client: u32,
        t: (u64, u64),
        key: &str,
        expected: Option<&str>,
        value: &str,
        succeeded: bool,
        revision: i64,
    ) -> u64 {
        let call = Call::Cas { key: b(key), expected: expected.map(b), value: b(value) };
        self.op(client, (t.0, Some(t.1)), call, Outcome::Cas { succeeded, revision })
    }

    pub fn check(&self) -> Report {
        check(&self.h, &CheckOptions::default())
    }
}

/// The seeded generator of the generated histories.
pub use meridian_types::SplitMix64 as SplitMix;

/// True `percent` times in a hundred.
pub fn chance(rng: &mut SplitMix, percent: u64) -> bool {
    rng.below(100) < percent
}

/// Shape of a generated history.
pub struct GenSpec {
    pub seed: u64,
    pub clients: u32,
    pub ops_per_client: usize,
    pub keys: usize,
    /// Upper bound of both invoke→effect and effect→completion delays: larger means more overlap.
    pub window: u64,
    /// Percentage of operations whose outcome is lost (half of those still take effect).
    pub unknown_percent: u64,
}

/// A history produced by really running operations against a sequential store, each taking effect at a
/// random instant inside its [invoke, complete] window: linearizable by construction, with consistent revisions.
pub fn generate(spec: &GenSpec) -> History {
    let mut rng = SplitMix::new(spec.seed);
    // (effect time, op index) so effects can be applied in time order after all windows are drawn.
    let mut ops: Vec<Operation> = Vec::new();
    let mut effect_at: Vec<u64> = Vec::new();
    for client in 0..spec.clients {
        let mut now = rng.below(spec.window + 1);
        for _ in 0..spec.ops_per_client {
            let invoke = now + rng.below(20);
            let effect = invoke + rng.below(spec.window + 1);
            let complete = effect + rng.below(spec.window + 1);
            let key = b(&format!("k{}", rng.below(spec.keys as u64)));
            let call = match rng.below(10) {
                0..=2 => Call::Put { key, value: Vec::new(), lease: None },
                3..=6 => Call::Get { key },
                7 => Call::Delete { key },
                _ => Call::Cas { key, expected: None, value: Vec::new() },
            };
            ops.push(Operation {
                id: ops.len() as u64 + 1,
                client,
                invoke,
                complete: Some(complete),
                call,
                outcome: Outcome::Unknown,
            });
            effect_at.push(effect);
            now = complete + 1;
        }
    }
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (effect_at[i], i));
    let mut store: HashMap<Vec<u8>, (Vec<u8>, i64)> = HashMap::new();
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut rev = 1i64;
    for i in order {
        let lost = chance(&mut rng, spec.unknown_percent);
        let takes_effect = !lost || chance(&mut rng, 50);
        let op = &mut ops[i];
        if let Call::Put { value, .. } | Call::Cas { value, .. } = &mut op.call {
            *value = b(&format!("v{}", op.id));
        }
        if let Call::Cas { key, expected, .. } = &mut op.call {
            *expected = match rng.below(3) {
                0 => store.get(key.as_slice()).map(|(v, _)| v.clone()),
                1 => None,
                _ => written.get(rng.below(written.len().max(1) as u64) as usize).cloned(),
            };
        }
        let outcome = if takes_effect { apply(&mut store, &mut rev, &op.call) } else { Outcome::Unknown };
        if let Some(v) = op.call.written_value() {
            written.push(v.to_vec());
        }
        if lost {
            op.complete = None;
            op.outcome = Outcome::Unknown;
        } else {
            op.outcome = outcome;
        }
    }
    History { ops, ..History::default() }
}

fn apply(store: &mut HashMap<Vec<u8>, (Vec<u8>, i64)>, rev: &mut i64, call: &Call) -> Outcome {
    match call {
        Call::Put { key, value, .. } => {
            *rev += 1;
            store.insert(key.clone(), (value.clone(), *rev));
            Outcome::Put { revision: *rev }
        }
        Call::Get { key } => {
            let found = store.get(key);
            Outcome::Get {
                value: found.map(|(v, _)| v.clone()),
                mod_revision: found.map_or(0, |f| f.1),
                revision: *rev,
            }
        }
        Call::Delete { key } => {
            let deleted = store.remove(key).is_some();
            *rev += i64::from(deleted);
            Outcome::Delete { deleted: i64::from(deleted), revision: *rev }
        }
        Call::Cas { key, expected, value } => {
            let succeeded = store.get(key).map(|(v, _)| v) == expected.as_ref();
            if succeeded {
                *rev += 1;
                store.insert(key.clone(), (value.clone(), *rev));
            }
            Outcome::Cas { succeeded, revision: *rev }
        }
        _ => Outcome::Unknown,
    }
}
