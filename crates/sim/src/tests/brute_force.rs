//! The WGL search, with the exact register model and with unobserved values folded, cross-checked against
//! exhaustive enumeration of orders on many small random histories, valid and invalid alike.

use super::util::{SplitMix, b, chance};
use crate::checker::model::{Model, Register, RegisterModel};
use crate::checker::wgl::{self, SearchResult};
use crate::history::{Call, Operation, Outcome};

/// Whether some order of `ops` respecting real time (touching counts as concurrent) is accepted by the model,
/// where operations with unknown outcome may also be left out.
fn exhaustive(ops: &[Operation], done: &mut Vec<bool>, state: &Register) -> bool {
    let pending_known = |done: &[bool], j: usize| !done[j] && ops[j].known_completion().is_some();
    if !(0..ops.len()).any(|j| pending_known(done, j)) {
        return true;
    }
    for i in 0..ops.len() {
        if done[i] {
            continue;
        }
        let blocked = (0..ops.len()).any(|j| j != i && pending_known(done, j) && ops[j].precedes(&ops[i]));
        if blocked {
            continue;
        }
        if let Some(next) = RegisterModel::exact().step(state, &ops[i]) {
            done[i] = true;
            let found = exhaustive(ops, done, &next);
            done[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn random_small_history(rng: &mut SplitMix) -> Vec<Operation> {
    // Puts draw from more values than reads and compares do, so some values go unobserved.
    let value = |rng: &mut SplitMix| b(&format!("v{}", rng.below(6)));
    let maybe = |rng: &mut SplitMix| if chance(rng, 30) { None } else { Some(b(&format!("v{}", rng.below(3)))) };
    let n = 2 + rng.below(6) as usize;
    (0..n)
        .map(|i| {
            let invoke = rng.below(20);
            let unknown = chance(rng, 15);
            let complete = (!unknown).then(|| invoke + rng.below(10));
            let key = b("k");
            let (call, outcome) = match rng.below(4) {
                0 => (Call::Put { key, value: value(rng), lease: None }, Outcome::Put { revision: 0 }),
                1 => (Call::Get { key }, Outcome::Get { value: maybe(rng), mod_revision: 0, revision: 0 }),
                2 => (Call::Delete { key }, Outcome::Delete { deleted: rng.below(2) as i64, revision: 0 }),
                _ => (
                    Call::Cas { key, expected: maybe(rng), value: value(rng) },
                    Outcome::Cas { succeeded: chance(rng, 50), revision: 0 },
                ),
            };
            let outcome = if unknown { Outcome::Unknown } else { outcome };
            Operation { id: i as u64, client: i as u32, invoke, complete, call, outcome }
        })
        .collect()
}

#[test]
fn wgl_agrees_with_exhaustive_search_on_small_random_histories() {
    let mut rng = SplitMix::new(2024);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..4000 {
        let ops = random_small_history(&mut rng);
        let expected = exhaustive(&ops, &mut vec![false; ops.len()], &Register::Absent);
        let refs: Vec<&Operation> = ops.iter().collect();
        for (name, model) in [("exact", RegisterModel::exact()), ("folded", RegisterModel::for_ops(&refs))] {
            match wgl::search(&model, &refs, 1_000_000) {
                SearchResult::Linearizable => assert!(expected, "round {round}: WGL ({name}) accepted {ops:#?}"),
                SearchResult::NotLinearizable(_) => assert!(!expected, "round {round}: WGL ({name}) rejected {ops:#?}"),
                SearchResult::StepLimit { .. } => panic!("round {round}: step limit on a tiny history"),
            }
        }
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(valid > 400 && invalid > 400, "both verdicts exercised: {valid} valid, {invalid} invalid");
}
