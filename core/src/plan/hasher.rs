//! The hasher of the planner's maps and sets.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher of the planner's maps: one folded multiply per 8 bytes (the mixing
/// step of FxHash and foldhash), much cheaper than the default SipHash for the
/// short names hashed here, and as evenly spread over the table for them. It is
/// not resistant to deliberately colliding keys: the keys are names from the
/// registrator's own account and Consul node (function, alias and service names,
/// which whoever can create them already controls), and collisions could only
/// slow a plan down, never change it.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastHasher {
    hash: u64,
}

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher {
            hash: 0x24_3f_6a_88_85_a3_08_d3,
        }
    }
}

/// An odd constant with well-spread bits (FxHash's).
const MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        let product = u128::from(self.hash ^ word) * u128::from(MULTIPLIER);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            if let Ok(word) = <[u8; 8]>::try_from(chunk) {
                self.add(u64::from_le_bytes(word));
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(rest) {
                *w = *b;
            }
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A map keyed by the planner's borrowed names.
pub(super) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A set of the planner's borrowed names.
pub(super) type FxSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::key::Key;

    /// The hasher spreads the benchmark's names evenly (it indexes hash tables by
    /// the low bits).
    #[test]
    fn hasher_spreads_names() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut buckets = FxSet::default();
        let mut names = 0;
        for i in 0..10_000 {
            for suffix in ["", "-live", "-beta", "-canary"] {
                let name = format!("fn-{i:06}{suffix}");
                let key = Key {
                    datacenter: None,
                    partition: None,
                    namespace: None,
                    name: &name,
                };
                buckets.insert(build.hash_one(key) & 0xffff);
                names += 1;
            }
        }
        // 40,000 keys in 65,536 buckets: about 30,000 distinct if spread at random.
        assert!(buckets.len() > 28_000, "{} of {names}", buckets.len());
    }
}
