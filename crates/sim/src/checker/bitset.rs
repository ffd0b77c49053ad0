//! A fixed-size bitset over `u64` words: the set of operations linearized so far, part of the search cache key.

/// A set of small integers below a fixed capacity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64)] }
    }

    /// Adds `i`.
    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Removes `i`.
    pub fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether every element of `self` is in `other` (both of the same capacity).
    pub fn is_subset_of(&self, other: &Bitset) -> bool {
        self.words.iter().zip(&other.words).all(|(a, b)| a & !b == 0)
    }

    /// A copy with `i` added.
    pub fn with(&self, i: usize) -> Self {
        let mut copy = self.clone();
        copy.set(i);
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn set_and_clear_across_word_boundaries() {
        let mut s = Bitset::new(130);
        for i in [0, 63, 64, 129] {
            s.set(i);
        }
        assert!(s.contains(63) && s.contains(64) && !s.contains(65));
        s.clear(64);
        assert!(!s.contains(64) && s.contains(63));
        assert_ne!(s.with(5), s, "with() copies and adds");
        assert!(!s.contains(5), "with() leaves the original alone");
    }

    #[test]
    fn subset_compares_every_word() {
        let mut small = Bitset::new(128);
        small.set(1);
        small.set(100);
        let mut big = small.with(64);
        assert!(small.is_subset_of(&big) && !big.is_subset_of(&small));
        big.clear(100);
        assert!(!small.is_subset_of(&big));
        assert!(Bitset::new(128).is_subset_of(&small));
    }

    #[test]
    fn equal_sets_are_equal_regardless_of_history() {
        let mut a = Bitset::new(70);
        a.set(3);
        a.set(69);
        a.clear(3);
        let mut b = Bitset::new(70);
        b.set(69);
        assert_eq!(a, b);
    }
}
