//! Key generation: which key each operation touches, and the small deterministic random generator the
//! clients draw keys and read/write choices from.
//!
//! Keys are zero-padded decimal numbers of exactly the requested size (`00000042` for key 42 at size 8), so
//! they are readable in `etcdctl get` and every key of a key space has the same size.

use anyhow::{bail, ensure};
use clap::ValueEnum;
use meridian_types::SplitMix64;

/// How operations pick keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyOrder {
    /// Operation i uses key i (modulo the key space, when there is one).
    Seq,
    /// Each operation draws a key uniformly from the key space.
    Random,
}

/// Which keys a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Bytes per key.
    pub size: usize,
    /// Sequential or random.
    pub order: KeyOrder,
    /// Number of distinct keys; 0 means unbounded (sequential only: every operation a new key).
    pub space: u64,
}

impl KeySpec {
    /// Refuses a random order without a key space, and key spaces whose numbers need more digits than the key
    /// size holds (those keys would be longer than asked, or collide).
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(self.size > 0, "--key-size must be at least 1");
        if self.order == KeyOrder::Random && self.space == 0 {
            bail!("--key-order random needs a --key-space to draw from");
        }
        if self.space > capacity(self.size) {
            bail!(
                "--key-space {} does not fit the key size of {} bytes (at most {} zero-padded decimal keys)",
                self.space,
                self.size,
                capacity(self.size)
            );
        }
        Ok(())
    }

    /// The key number operation `op` uses.
    pub fn index(&self, op: u64, rng: &mut SplitMix64) -> u64 {
        match (self.order, self.space) {
            (KeyOrder::Seq, 0) => op,
            (KeyOrder::Seq, space) => op % space,
            (KeyOrder::Random, space) => rng.below(space.max(1)),
        }
    }

    /// The key bytes of key number `index`.
    pub fn key(&self, index: u64) -> Vec<u8> {
        key_bytes(index, self.size)
    }
}

/// Number of distinct decimal keys of `size` digits (10^size, saturating).
pub fn capacity(size: usize) -> u64 {
    u32::try_from(size).ok().and_then(|s| 10u64.checked_pow(s)).unwrap_or(u64::MAX)
}

/// `index` as a decimal number zero-padded to `size` bytes (longer only if it has more digits than that).
pub fn key_bytes(index: u64, size: usize) -> Vec<u8> {
    format!("{index:0size$}").into_bytes()
}

/// The generator of a client's key draws, seeded per client (benchmarks need reproducible, well-spread
/// draws, not cryptographic ones).
pub fn client_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ 0x6a09_e667_f3bc_c909)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_decimals_of_the_requested_size() {
        assert_eq!(key_bytes(42, 8), b"00000042".to_vec());
        assert_eq!(key_bytes(0, 1), b"0".to_vec());
        assert_eq!(key_bytes(99_999_999, 8).len(), 8);
        assert_eq!(KeySpec { size: 3, order: KeyOrder::Seq, space: 0 }.key(7), b"007".to_vec());
    }

    #[test]
    fn sequential_keys_count_up_and_wrap_at_the_key_space() {
        let mut rng = SplitMix64::new(1);
        let fresh = KeySpec { size: 8, order: KeyOrder::Seq, space: 0 };
        assert_eq!((0..5).map(|op| fresh.index(op, &mut rng)).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        let wrapping = KeySpec { size: 8, order: KeyOrder::Seq, space: 3 };
        assert_eq!((0..7).map(|op| wrapping.index(op, &mut rng)).collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn random_keys_stay_in_the_key_space_and_cover_it() {
        let mut rng = SplitMix64::new(7);
        let spec = KeySpec { size: 8, order: KeyOrder::Random, space: 10 };
        let mut seen = [0u32; 10];
        for op in 0..10_000 {
            let i = spec.index(op, &mut rng);
            assert!(i < 10);
            seen[i as usize] += 1;
        }
        // Uniform: each of the 10 keys gets about 1000 of 10 000 draws.
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn key_spec_checks_order_and_size() {
        assert!(KeySpec { size: 8, order: KeyOrder::Random, space: 0 }.check().is_err());
        assert!(KeySpec { size: 2, order: KeyOrder::Seq, space: 100 }.check().is_ok());
        assert!(KeySpec { size: 2, order: KeyOrder::Seq, space: 101 }.check().is_err());
        assert!(KeySpec { size: 40, order: KeyOrder::Random, space: u64::MAX }.check().is_ok());
        assert_eq!(capacity(3), 1000);
        assert_eq!(capacity(25), u64::MAX);
    }
}
