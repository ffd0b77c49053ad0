//! Splitting a history into independent per-key sub-histories. Linearizability is compositional: a history
//! of single-key operations is linearizable iff each key's sub-history is, so each key is searched alone.

use std::collections::BTreeMap;

use crate::history::{Call, History, Operation, Outcome};

/// The operations of one key that the linearizability search must order.
#[derive(Clone, Debug)]
pub struct KeyPartition<'h> {
    /// The key.
    pub key: &'h [u8],
    /// Its operations, in history order.
    pub ops: Vec<&'h Operation>,
}

/// Splits `history` per key, in key order. Leaves out what cannot affect any key's register: lease calls,
/// failed operations (they did not take effect), reads with unknown outcome (they change nothing and
/// constrain nothing) and serializable reads (not linearizable by design; the serializable check judges
/// them). Keys ever written with a lease are left out entirely: lease expiry deletes them without any
/// client operation, which a plain register cannot model; the lease check judges them.
pub fn by_key(history: &History) -> Vec<KeyPartition<'_>> {
    let leased: std::collections::BTreeSet<&[u8]> = history
        .ops
        .iter()
        .filter_map(|op| match &op.call {
            Call::Put { key, lease: Some(_), .. } => Some(key.as_slice()),
            _ => None,
        })
        .collect();
    let mut keys: BTreeMap<&[u8], Vec<&Operation>> = BTreeMap::new();
    for op in &history.ops {
        let Some(key) = op.call.key() else { continue };
        if leased.contains(key) {
            continue;
        }
        let dropped = matches!(
            (&op.call, &op.outcome),
            (_, Outcome::Failed { .. }) | (Call::Get { .. }, Outcome::Unknown) | (Call::LocalGet { .. }, _)
        );
        if !dropped {
            keys.entry(key).or_default().push(op);
        }
    }
    keys.into_iter().map(|(key, ops)| KeyPartition { key, ops }).collect()
}

#[cfg(test)]
mod tests {
    use super::by_key;
    use crate::history::{Call, History, Operation, Outcome};

    fn op(id: u64, call: Call, outcome: Outcome) -> Operation {
        Operation { id, client: 0, invoke: id, complete: Some(id + 1), call, outcome }
    }

    #[test]
    fn groups_by_key_and_drops_ops_that_cannot_matter() {
        let k = |s: &str| s.as_bytes().to_vec();
        let history = History {
            ops: vec![
                op(1, Call::Put { key: k("b"), value: k("1"), lease: None }, Outcome::Put { revision: 2 }),
                op(2, Call::Get { key: k("a") }, Outcome::Get { value: None, mod_revision: 0, revision: 2 }),
                op(3, Call::Delete { key: k("b") }, Outcome::Failed { reason: "rejected".into() }),
                op(4, Call::Get { key: k("b") }, Outcome::Unknown),
                op(5, Call::LeaseGrant { ttl_secs: 5 }, Outcome::LeaseGrant { lease: 7, ttl_secs: 5 }),
                op(6, Call::Delete { key: k("b") }, Outcome::Unknown),
            ],
            ..History::default()
        };
        let parts = by_key(&history);
        let summary: Vec<(&[u8], Vec<u64>)> =
            parts.iter().map(|p| (p.key, p.ops.iter().map(|o| o.id).collect())).collect();
        assert_eq!(summary, vec![(&b"a"[..], vec![2]), (&b"b"[..], vec![1, 6])]);
    }

    #[test]
    fn keys_written_with_a_lease_are_left_to_the_lease_check() {
        let k = |s: &str| s.as_bytes().to_vec();
        let history = History {
            ops: vec![
                op(1, Call::Put { key: k("l"), value: k("1"), lease: Some(7) }, Outcome::Put { revision: 2 }),
                op(2, Call::Get { key: k("l") }, Outcome::Get { value: None, mod_revision: 0, revision: 3 }),
                op(3, Call::Put { key: k("p"), value: k("2"), lease: None }, Outcome::Put { revision: 4 }),
            ],
            ..History::default()
        };
        let keys: Vec<&[u8]> = by_key(&history).iter().map(|p| p.key).collect();
        assert_eq!(keys, vec![&b"p"[..]], "an expiring key is not a plain register");
    }
}
