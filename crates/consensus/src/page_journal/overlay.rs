//! The bytes written since the last checkpoint that the database file does not hold yet: a map of
//! non-overlapping byte ranges where a later write replaces what it covers of earlier ones. redb
//! rewrites the same pages (its header, the tail leaf, the allocator's state) in almost every
//! commit, so keeping only the last image of each until the checkpoint writes each page once per
//! checkpoint instead of once per commit.

use std::collections::BTreeMap;

/// Byte ranges keyed by their start offset; no two overlap.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl Overlay {
    /// Records `data` at `offset`, replacing whatever it covers of earlier writes.
    pub(super) fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        self.cut(offset, end);
        self.ranges.insert(offset, data.to_vec());
    }

    /// Forgets every byte at or past `len` (the file was truncated there).
    pub(super) fn truncate(&mut self, len: u64) {
        self.cut(len, u64::MAX);
    }

    /// Copies the bytes this overlay holds within `[offset, offset + out.len())` into `out`.
    pub(super) fn patch(&self, offset: u64, out: &mut [u8]) {
        let end = offset + out.len() as u64;
        // Ranges are disjoint and sorted, so their ends grow with their starts: walk back from the
        // last one starting before `end` until one ends at or before `offset`.
        for (&start, data) in self.ranges.range(..end).rev() {
            let stop = start + data.len() as u64;
            if stop <= offset {
                break;
            }
            let (lo, hi) = (start.max(offset), stop.min(end));
            out[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&data[(lo - start) as usize..(hi - start) as usize]);
        }
    }

    /// One past the last byte held, if any.
    pub(super) fn end(&self) -> Option<u64> {
        self.ranges.last_key_value().map(|(start, data)| start + data.len() as u64)
    }

    /// Every range, in offset order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(start, data)| (*start, data.as_slice()))
    }

    /// Forgets everything (the database file holds it now).
    pub(super) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Number of disjoint ranges held.
    #[cfg(test)]
    pub(super) fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Removes `[from, to)` from every range, keeping the parts outside it.
    fn cut(&mut self, from: u64, to: u64) {
        let overlapping: Vec<u64> = self
            .ranges
            .range(..to)
            .rev()
            .take_while(|(start, data)| **start + data.len() as u64 > from)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            let data = self.ranges.remove(&start).expect("collected from the map");
            let stop = start + data.len() as u64;
            if start < from {
                self.ranges.insert(start, data[..(from - start) as usize].to_vec());
            }
            if stop > to {
                self.ranges.insert(to, data[(to - start) as usize..].to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// The overlay against a plain byte image under random writes and truncations.
    #[test]
    fn matches_a_plain_image_under_random_writes_and_truncations() {
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut overlay = Overlay::default();
            // `None`: never written since the start (the database file's bytes show through).
            let mut image: Vec<Option<u8>> = vec![None; 256];
            for step in 0..200 {
                if rng.random_bool(0.1) {
                    let len = rng.random_range(0..256u64);
                    overlay.truncate(len);
                    image[len as usize..].fill(None);
                } else {
                    let offset = rng.random_range(0..240u64);
                    let len = rng.random_range(0..=(256 - offset) as usize).min(40);
                    let byte = (step % 250) as u8 + 1;
                    overlay.write(offset, &vec![byte; len]);
                    image[offset as usize..offset as usize + len].fill(Some(byte));
                }
                let mut out = [0u8; 256];
                overlay.patch(0, &mut out);
                let expected: Vec<u8> = image.iter().map(|b| b.unwrap_or(0)).collect();
                assert_eq!(out.to_vec(), expected, "seed {seed} step {step}");
                let mut window = [0u8; 17];
                let at = rng.random_range(0..240u64);
                overlay.patch(at, &mut window);
                assert_eq!(
                    window.to_vec(),
                    expected[at as usize..at as usize + 17].to_vec(),
                    "seed {seed} step {step}"
                );
                let last = image.iter().rposition(Option::is_some).map(|i| i as u64 + 1);
                assert_eq!(overlay.end(), last, "seed {seed} step {step}");
            }
            let mut rebuilt = vec![0u8; 256];
            let mut previous_end = 0;
            for (start, data) in overlay.iter() {
                assert!(start >= previous_end, "seed {seed}: ranges overlap or are out of order");
                previous_end = start + data.len() as u64;
                rebuilt[start as usize..previous_end as usize].copy_from_slice(data);
            }
            let expected: Vec<u8> = image.iter().map(|b| b.unwrap_or(0)).collect();
            assert_eq!(rebuilt, expected, "seed {seed}: the ranges in order");
            overlay.clear();
            assert_eq!(overlay.end(), None);
        }
    }

    #[test]
    fn rewriting_the_same_page_keeps_one_range() {
        let mut overlay = Overlay::default();
        for round in 0..100u8 {
            overlay.write(0, &[round; 320]);
            overlay.write(4096, &[round; 4096]);
            overlay.write(8192, &[round; 4096]);
        }
        assert_eq!(overlay.ranges(), 3);
        let mut out = [0u8; 2];
        overlay.patch(4095, &mut out);
        assert_eq!(out, [0, 99]);
    }
}
