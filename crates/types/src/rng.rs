//! `SplitMix64`: the one small seeded pseudo-random generator every crate uses where a run must be
//! reproducible from a seed (fault emulation, openraft's election timeouts, the simulation, benchmark key
//! choice). One `u64` of state, passes BigCrush; not for anything security related.

/// SplitMix64's generator. Equal seeds give equal sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole sequence follows from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0). The modulo bias is below 2^-40 for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// Uniform in `[0, 1)`: the top 53 bits scaled, so every value is exactly representable.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_fixes_the_sequence_and_draws_stay_in_range() {
        let mut a = SplitMix64::new(3);
        let mut b = SplitMix64::new(3);
        let xs: Vec<u64> = (0..200).map(|_| a.between(5, 9)).collect();
        assert_eq!(xs, (0..200).map(|_| b.between(5, 9)).collect::<Vec<_>>());
        assert!(xs.iter().all(|x| (5..9).contains(x)));
        assert!(xs.contains(&5) && xs.contains(&8), "both ends are reachable");
        assert_ne!(SplitMix64::new(4).next_u64(), SplitMix64::new(3).next_u64());
        let units: Vec<f64> = (0..1000).map(|_| a.unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = units.iter().sum::<f64>() / units.len() as f64;
        assert!((0.45..0.55).contains(&mean), "roughly uniform: mean {mean}");
        assert_eq!(a.below(0), 0);
        assert!(!a.chance(0.0) && a.chance(1.0));
    }
}
