//! Generated histories: linearizable by construction, then corrupted; plus size and step-limit behaviour.

use super::util::{GenSpec, b, generate};
use crate::checker::{CheckOptions, CheckResult, check, check_linearizability};
use crate::history::{Call, Outcome};

fn spec(seed: u64) -> GenSpec {
    GenSpec { seed, clients: 5, ops_per_client: 40, keys: 3, window: 60, unknown_percent: 10 }
}

#[test]
fn generated_histories_pass_every_check() {
    for seed in 0..40 {
        let history = generate(&spec(seed));
        let report = check(&history, &CheckOptions::default());
        assert!(report.is_valid(), "seed {seed}:\n{report}");
        assert_eq!(report.ops_checked, history.ops.iter().filter(|o| !is_unknown_get(&o.call, &o.outcome)).count());
    }
}

fn is_unknown_get(call: &Call, outcome: &Outcome) -> bool {
    matches!((call, outcome), (Call::Get { .. }, Outcome::Unknown))
}

#[test]
fn corrupting_one_read_of_a_generated_history_is_caught_on_its_key() {
    for seed in 0..40 {
        let mut history = generate(&spec(seed));
        let n = history.ops.len();
        let start = (seed as usize * 7) % n;
        let Some(i) = (0..n).map(|k| (start + k) % n).find(|&i| {
            matches!((&history.ops[i].call, &history.ops[i].outcome), (Call::Get { .. }, Outcome::Get { .. }))
        }) else {
            panic!("seed {seed}: no completed read to corrupt");
        };
        let op = &mut history.ops[i];
        let Call::Get { key } = op.call.clone() else { unreachable!() };
        op.outcome = Outcome::Get { value: Some(b("never-written")), mod_revision: 1, revision: 1 };
        let lin = check_linearizability(&history, 1_000_000);
        assert_eq!(lin.result, CheckResult::Invalid, "seed {seed}");
        assert_eq!(lin.failures.iter().map(|f| f.key.clone()).collect::<Vec<_>>(), vec![key], "seed {seed}");
    }
}

#[test]
fn stale_read_injected_into_a_sequential_generated_history_is_caught() {
    let mut caught = 0;
    for seed in 0..20 {
        // One client, zero-length windows: a strictly sequential history.
        let mut history = generate(&GenSpec { window: 0, clients: 1, unknown_percent: 0, ..spec(seed) });
        // Find a read preceded by two completed puts to its key and make it return the older one.
        let mut puts: std::collections::HashMap<Vec<u8>, Vec<Vec<u8>>> = std::collections::HashMap::new();
        let mut corrupted = None;
        for op in history.ops.iter_mut() {
            match (&op.call, &mut op.outcome) {
                (Call::Put { key, value, .. }, _) => puts.entry(key.clone()).or_default().push(value.clone()),
                (Call::Get { key }, Outcome::Get { value, .. }) => {
                    let written = puts.get(key).map(Vec::as_slice).unwrap_or_default();
                    if written.len() >= 2 && value.as_deref() == written.last().map(Vec::as_slice) {
                        *value = Some(written[written.len() - 2].clone());
                        corrupted = Some(key.clone());
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(key) = corrupted else { continue };
        let lin = check_linearizability(&history, 1_000_000);
        assert_eq!(lin.result, CheckResult::Invalid, "seed {seed}");
        assert_eq!(lin.failures[0].key, key);
        caught += 1;
    }
    assert!(caught >= 10, "only {caught} seeds had a read to corrupt");
}

#[test]
fn two_hundred_op_partition_with_eight_concurrent_clients_is_checked() {
    let history =
        generate(&GenSpec { seed: 7, clients: 8, ops_per_client: 25, keys: 1, window: 200, unknown_percent: 3 });
    assert_eq!(history.ops.len(), 200);
    let lin = check_linearizability(&history, 5_000_000);
    assert_eq!(lin.result, CheckResult::Ok);
    assert_eq!(lin.keys_checked, 1);
}

#[test]
fn tiny_step_limit_on_a_large_concurrent_history_gives_unknown_not_a_hang() {
    let history =
        generate(&GenSpec { seed: 3, clients: 8, ops_per_client: 50, keys: 2, window: 400, unknown_percent: 5 });
    let report = check(&history, &CheckOptions { max_steps_per_key: 10, ..CheckOptions::default() });
    assert_eq!(report.linearizability, CheckResult::Unknown);
    assert_eq!(report.unknown_keys, vec![b("k0"), b("k1")]);
    assert!(report.is_unknown() && !report.is_valid() && !report.is_invalid());
}
