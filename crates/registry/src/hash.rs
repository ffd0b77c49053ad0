//! A stable 64-bit hash for rendezvous hashing: FNV-1a over the parts (each followed by a `0xff` byte, which
//! no valid name contains, so `("ab", "c")` and `("a", "bc")` differ), then MurmurHash3's 64-bit finalizer so
//! that names differing in one character land far apart. Its output is part of the cluster's behaviour (which
//! member runs which check): it must never change between processes, builds or versions. The tests pin it.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

fn fnv1a_from(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's `fmix64`: every input bit affects every output bit.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The stable hash of a sequence of parts.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let h = parts.iter().fold(FNV_OFFSET, |h, part| fnv1a_from(fnv1a_from(h, part), &[0xff]));
    fmix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_hash_is_pinned_and_separates_parts() {
        // Pinned: if these change, every check in every cluster moves to another member.
        assert_eq!(stable_hash(&[b"a1", b"web/node-1/web-1"]), 0xa857_039e_5c66_cfdd);
        assert_eq!(stable_hash(&[b"b2", b"db/n/x"]), 0xcb7c_ebec_1844_30b3);
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(stable_hash(&[b"a1", b"x"]), stable_hash(&[b"a2", b"x"]));
    }
}
