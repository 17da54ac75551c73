//! The mask PRNG and integer sampler, bit-compatible with the reference (SPEC §2.5).
//!
//! The key stream is ChaCha20 (`rand_chacha` 0.3 `ChaCha20Rng`: key = seed, 64-bit counter
//! from 0, stream 0) consumed as little-endian 32-bit words. A request for `n` random bytes
//! consumes `ceil(n/4)` whole words. `generate_integer(max)` draws `L = bytes(max)` bytes per
//! attempt and rejects until the little-endian value is below `max`.
//!
//! The fixed-width samplers below consume exactly the same words as the generic one; they just
//! avoid allocating a big integer per attempt, which is what makes mask derivation run at
//! key-stream speed.

use num_bigint::BigUint;
use rand_chacha::rand_core::block::BlockRngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Core;

const BLOCK_WORDS: usize = 64;

type Block = <ChaCha20Core as BlockRngCore>::Results;

/// The mask PRNG: a ChaCha20 key stream read word by word.
pub struct MaskRng {
    core: ChaCha20Core,
    /// The current 64-word block, written by the cipher in place (no copy).
    buf: Block,
    pos: usize,
    blocks: u64,
}

impl MaskRng {
    /// A PRNG seeded with a 32-byte mask seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            core: ChaCha20Core::from_seed(seed),
            buf: Block::default(),
            pos: BLOCK_WORDS,
            blocks: 0,
        }
    }

    /// Key-stream words generated so far (in units of 64 words); used by benchmarks.
    pub fn words_generated(&self) -> u64 {
        self.blocks * BLOCK_WORDS as u64
    }

    fn refill(&mut self) {
        self.core.generate(&mut self.buf);
        self.pos = 0;
        self.blocks += 1;
    }

    fn words(&self) -> &[u32] {
        self.buf.as_ref()
    }

    /// The next key-stream word.
    #[inline]
    pub fn next_word(&mut self) -> u32 {
        if self.pos == BLOCK_WORDS {
            self.refill();
        }
        let w = self.words().get(self.pos).copied().unwrap_or_default();
        self.pos += 1;
        w
    }

    /// `n` random bytes, consuming `ceil(n/4)` words (the tail of the last word is dropped).
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let w = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    /// Uniform integer in `[0, max)` exactly as the reference's `generate_integer`.
    pub fn generate_big(&mut self, max: &BigUint) -> BigUint {
        if max.bits() == 0 {
            return BigUint::default();
        }
        let len = (max.bits() as usize).div_ceil(8);
        let mut bytes = vec![0u8; len];
        loop {
            self.fill_bytes(&mut bytes);
            let x = BigUint::from_bytes_le(&bytes);
            if &x < max {
                return x;
            }
        }
    }

    /// One draw below `qm1 + 1`, where `max = qm1 + 1` has `len ≤ 17` bytes.
    ///
    /// `len == 17` only happens for `max = 2^128`: the 17th byte must then be zero.
    pub fn generate_u128(&mut self, len: usize, qm1: u128) -> u128 {
        loop {
            if let Some(x) = self.attempt_u128(len, qm1) {
                return x;
            }
        }
    }

    /// One sampling attempt of `len ≤ 17` bytes: the value if it is `≤ qm1`.
    #[inline]
    fn attempt_u128(&mut self, len: usize, qm1: u128) -> Option<u128> {
        let mut x: u128 = 0;
        let mut high_ok = true;
        for i in 0..len.div_ceil(4) {
            let w = self.next_word() as u128;
            if i < 4 {
                x |= w << (32 * i);
            } else {
                // Only the low byte belongs to the draw (len = 17).
                high_ok = w & 0xff == 0;
            }
        }
        if len < 16 {
            x &= (1u128 << (8 * len)) - 1;
        }
        (high_ok && x <= qm1).then_some(x)
    }

    /// Fills `out` with draws below `qm1 + 1` whose byte length `len` is at most 8.
    ///
    /// The hot path: attempts are read straight from the block buffer, branch-free.
    pub fn fill_u64(&mut self, out: &mut [u64], len: usize, qm1: u64) {
        debug_assert!((1..=8).contains(&len));
        let words = len.div_ceil(4);
        let mask = if len == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * len)) - 1
        };
        let mut i = 0;
        while i < out.len() {
            let words_left = self.words().get(self.pos..).unwrap_or_default();
            let (used, filled) = if words == 2 {
                scan2(words_left, &mut out[i..], mask, qm1)
            } else {
                scan1(words_left, &mut out[i..], mask, qm1)
            };
            self.pos += used;
            i += filled;
            if i < out.len() {
                if self.pos == BLOCK_WORDS {
                    self.refill();
                } else {
                    // A draw that straddles two blocks: one attempt, word by word.
                    if let Some(x) = self.attempt_u128(len, qm1 as u128) {
                        out[i] = x as u64;
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Attempts from pairs of words (draws of 5 to 8 bytes) until `words` or `out` runs out;
/// returns (words used, values written). Branch-free: every attempt is stored, and the
/// output position only advances when it is accepted.
#[inline]
fn scan2(words: &[u32], out: &mut [u64], mask: u64, qm1: u64) -> (usize, usize) {
    let mut i = 0;
    let mut used = 0;
    for pair in words.chunks_exact(2) {
        let Some(slot) = out.get_mut(i) else { break };
        let x = (pair[0] as u64 | (pair[1] as u64) << 32) & mask;
        *slot = x;
        i += (x <= qm1) as usize;
        used += 2;
    }
    (used, i)
}

/// Like [`scan2`] for draws of 1 to 4 bytes (one word per attempt).
#[inline]
fn scan1(words: &[u32], out: &mut [u64], mask: u64, qm1: u64) -> (usize, usize) {
    let mut i = 0;
    let mut used = 0;
    for &w in words {
        let Some(slot) = out.get_mut(i) else { break };
        let x = w as u64 & mask;
        *slot = x;
        i += (x <= qm1) as usize;
        used += 1;
    }
    (used, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::RngCore;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn words_match_rand_chacha() {
        let mut ours = MaskRng::from_seed([7; 32]);
        let mut theirs = ChaCha20Rng::from_seed([7; 32]);
        for _ in 0..300 {
            assert_eq!(ours.next_word(), theirs.next_u32());
        }
        let mut a = [0u8; 7];
        let mut b = [0u8; 7];
        ours.fill_bytes(&mut a);
        theirs.fill_bytes(&mut b);
        assert_eq!(a, b);
        assert_eq!(ours.next_word(), theirs.next_u32());
    }

    #[test]
    fn fixed_width_samplers_match_generic() {
        for max in [
            1u128,
            2,
            7,
            255,
            256,
            1000,
            1 << 32,
            20_000_000_000_021,
            (1 << 58) + 3,
        ] {
            let len = (128 - (max).leading_zeros() as usize).div_ceil(8);
            let mut generic = MaskRng::from_seed([1; 32]);
            let mut fast = MaskRng::from_seed([1; 32]);
            let mut wide = MaskRng::from_seed([1; 32]);
            let expect: Vec<u64> = (0..200)
                .map(|_| {
                    generic
                        .generate_big(&BigUint::from(max))
                        .try_into()
                        .unwrap()
                })
                .collect();
            let mut got = vec![0u64; 200];
            if len <= 8 {
                fast.fill_u64(&mut got, len, (max - 1) as u64);
                assert_eq!(got, expect, "max {max}");
            }
            let wide_got: Vec<u64> = (0..200)
                .map(|_| wide.generate_u128(len, max - 1) as u64)
                .collect();
            assert_eq!(wide_got, expect, "max {max}");
            assert_eq!(generic.next_word(), wide.next_word());
        }
    }

    #[test]
    fn two_pow_128_sampler() {
        let max = BigUint::from(1u8) << 128u32;
        let mut generic = MaskRng::from_seed([3; 32]);
        let mut wide = MaskRng::from_seed([3; 32]);
        for _ in 0..3 {
            let a = generic.generate_big(&max);
            let b = wide.generate_u128(17, u128::MAX);
            assert_eq!(a, BigUint::from(b));
        }
    }
}
