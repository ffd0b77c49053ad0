//! The search cache: configurations the linearizability search already reached, so it never explores one
//! twice. A configuration is the set of linearized operations plus the model state.
//!
//! Operations with unknown outcome are kept in a set of their own, because having linearized fewer of them
//! leaves strictly more options (each may still be used later, or never). A configuration that matches an
//! explored one except for having linearized *more* unknown operations can only reach a subset of what the
//! explored one could, so it is pruned too. This keeps histories with many timeouts tractable; without
//! unknown operations the cache is exactly Porcupine's.

use std::collections::HashMap;
use std::hash::Hash;

use super::bitset::Bitset;

/// Explored configurations: per (linearized known operations, state), the minimal sets of linearized
/// unknown operations seen with them.
pub struct Cache<S> {
    seen: HashMap<(Bitset, S), Vec<Bitset>>,
}

impl<S: Eq + Hash> Cache<S> {
    /// An empty cache.
    pub fn new() -> Self {
        Cache { seen: HashMap::new() }
    }

    /// Records a configuration. Returns false if it, or one that dominates it, was already recorded.
    pub fn insert(&mut self, known: Bitset, unknown: &Bitset, state: S) -> bool {
        let minimal = self.seen.entry((known, state)).or_default();
        if minimal.iter().any(|u| u.is_subset_of(unknown)) {
            return false;
        }
        minimal.retain(|u| !unknown.is_subset_of(u));
        minimal.push(unknown.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;
    use crate::checker::bitset::Bitset;

    fn set(bits: &[usize]) -> Bitset {
        let mut s = Bitset::new(8);
        for &b in bits {
            s.set(b);
        }
        s
    }

    #[test]
    fn a_configuration_is_new_once() {
        let mut cache = Cache::new();
        assert!(cache.insert(set(&[0]), &set(&[]), 'x'));
        assert!(!cache.insert(set(&[0]), &set(&[]), 'x'));
        assert!(cache.insert(set(&[0]), &set(&[]), 'y'), "another state is another configuration");
        assert!(cache.insert(set(&[1]), &set(&[]), 'x'), "another known set is another configuration");
    }

    #[test]
    fn more_unknown_ops_used_is_dominated_by_fewer() {
        let mut cache = Cache::new();
        assert!(cache.insert(set(&[0]), &set(&[2]), 'x'));
        assert!(!cache.insert(set(&[0]), &set(&[2, 3]), 'x'), "a superset of used unknown ops is pruned");
        assert!(cache.insert(set(&[0]), &set(&[3]), 'x'), "an incomparable set is not");
        assert!(cache.insert(set(&[0]), &set(&[]), 'x'), "a subset is new, and dominates both");
        assert!(!cache.insert(set(&[0]), &set(&[3]), 'x'));
        assert!(!cache.insert(set(&[0]), &set(&[5]), 'x'));
    }
}
