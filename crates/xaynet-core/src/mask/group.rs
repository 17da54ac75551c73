//! Group elements `Z/qZ` in the narrowest representation that holds them.
//!
//! Every bounded configuration has `q ≤ 2^128` (the default `q ≈ 2^44.2`), so its elements
//! live in `u64` or `u128` and the hot loops are plain integer code; only the `Bmax`
//! configurations need big integers.

use num_bigint::BigUint;
use num_traits::ToPrimitive;

use super::config::{bytes_per_number, MaskConfig};
use super::prng::MaskRng;

/// How elements of a group are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// `q ≤ 2^64`; `qm1 = q − 1`.
    U64 { qm1: u64 },
    /// `2^64 < q ≤ 2^128`; `qm1 = q − 1`.
    U128 { qm1: u128 },
    /// `q > 2^128`.
    Big,
}

/// A mask configuration with its derived constants, ready for arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    config: MaskConfig,
    order: BigUint,
    bpn: usize,
    /// Bytes of `q` itself, i.e. the sampler's bytes per attempt.
    sample_len: usize,
    /// Whether the order is the formula's order for the config.
    standard: bool,
    pub(crate) width: Width,
}

impl Group {
    /// The group of `config`, with the order computed from the formula.
    pub fn new(config: MaskConfig) -> Self {
        Self::with_order(config, config.order().clone())
    }

    /// The group of `config` with an explicit order, e.g. to interoperate with a peer that
    /// uses the reference's tabulated (rounded) order for a `Bmax` configuration. The order
    /// must be at least 2.
    pub fn with_order(config: MaskConfig, order: BigUint) -> Self {
        let order = order.max(BigUint::from(2u32));
        let qm1 = &order - 1u32;
        let width = if let Some(q) = qm1.to_u64() {
            Width::U64 { qm1: q }
        } else if let Some(q) = qm1.to_u128() {
            Width::U128 { qm1: q }
        } else {
            Width::Big
        };
        Self {
            config,
            bpn: bytes_per_number(&order),
            sample_len: (order.bits() as usize).div_ceil(8),
            standard: &order == config.order(),
            order,
            width,
        }
    }

    /// The configuration.
    pub fn config(&self) -> MaskConfig {
        self.config
    }

    /// The group order `q`.
    pub fn order(&self) -> &BigUint {
        &self.order
    }

    /// Whether the order is the one the formula gives for the config.
    pub fn is_standard(&self) -> bool {
        self.standard
    }

    /// Bytes per element on the wire.
    pub fn bytes_per_number(&self) -> usize {
        self.bpn
    }

    /// An empty element vector of the right width.
    pub fn empty(&self, capacity: usize) -> Elements {
        match self.width {
            Width::U64 { .. } => Elements::U64(Vec::with_capacity(capacity)),
            Width::U128 { .. } => Elements::U128(Vec::with_capacity(capacity)),
            Width::Big => Elements::Big(Vec::with_capacity(capacity)),
        }
    }

    /// Whether `e`'s representation is the one this group uses.
    pub(crate) fn matches(&self, e: &Elements) -> bool {
        matches!(
            (&self.width, e),
            (Width::U64 { .. }, Elements::U64(_))
                | (Width::U128 { .. }, Elements::U128(_))
                | (Width::Big, Elements::Big(_))
        )
    }

    /// Draws `n` uniform elements from `rng` (the reference's sampler, word for word).
    pub fn sample(&self, rng: &mut MaskRng, n: usize) -> Elements {
        match self.width {
            Width::U64 { qm1 } if self.sample_len <= 8 => {
                let mut v = vec![0u64; n];
                rng.fill_u64(&mut v, self.sample_len, qm1);
                Elements::U64(v)
            }
            Width::U64 { qm1 } => Elements::U64(
                (0..n)
                    .map(|_| rng.generate_u128(self.sample_len, qm1 as u128) as u64)
                    .collect(),
            ),
            Width::U128 { qm1 } => Elements::U128(
                (0..n)
                    .map(|_| rng.generate_u128(self.sample_len, qm1))
                    .collect(),
            ),
            Width::Big => Elements::Big((0..n).map(|_| rng.generate_big(&self.order)).collect()),
        }
    }

    /// `a ← (a + b) mod q` element-wise. Both must be of this group's width and length.
    pub(crate) fn add_assign(&self, a: &mut Elements, b: &Elements) {
        match (&self.width, a, b) {
            (Width::U64 { qm1 }, Elements::U64(a), Elements::U64(b)) => add_u64(a, b, *qm1),
            (Width::U128 { qm1 }, Elements::U128(a), Elements::U128(b)) => add_u128(a, b, *qm1),
            (Width::Big, Elements::Big(a), Elements::Big(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                    if *x >= self.order {
                        *x -= &self.order;
                    }
                }
            }
            _ => {}
        }
    }

    /// Like [`Group::add_assign`], split across `threads` OS threads for long vectors (the
    /// coordinator's aggregate of a large model). Falls back to one thread on wasm.
    pub(crate) fn add_assign_par(&self, a: &mut Elements, b: &Elements, threads: usize) {
        // Below a million elements per thread, starting threads costs more than it saves:
        // a million-element addition takes about half a millisecond, while a thread started on
        // a busy machine may wait a scheduler slice (milliseconds) before it runs.
        self.add_assign_split(a, b, threads, 1 << 20)
    }

    /// [`Group::add_assign_par`] with at least `min_chunk` elements per thread.
    fn add_assign_split(&self, a: &mut Elements, b: &Elements, threads: usize, min_chunk: usize) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let threads = threads.min(a.len() / min_chunk.max(1)).max(1);
            if threads > 1 {
                let chunk = a.len().div_ceil(threads);
                match (&self.width, a, b) {
                    (Width::U64 { qm1 }, Elements::U64(a), Elements::U64(b)) => {
                        let qm1 = *qm1;
                        std::thread::scope(|s| {
                            for (x, y) in a.chunks_mut(chunk).zip(b.chunks(chunk)) {
                                s.spawn(move || add_u64(x, y, qm1));
                            }
                        });
                        return;
                    }
                    (Width::U128 { qm1 }, Elements::U128(a), Elements::U128(b)) => {
                        let qm1 = *qm1;
                        std::thread::scope(|s| {
                            for (x, y) in a.chunks_mut(chunk).zip(b.chunks(chunk)) {
                                s.spawn(move || add_u128(x, y, qm1));
                            }
                        });
                        return;
                    }
                    (_, a, b) => return self.add_assign(a, b),
                }
            }
        }
        let _ = (threads, min_chunk);
        self.add_assign(a, b)
    }

    /// `(a − b) mod q` element-wise.
    pub(crate) fn sub(&self, a: &Elements, b: &Elements) -> Elements {
        match (&self.width, a, b) {
            (Width::U64 { qm1 }, Elements::U64(a), Elements::U64(b)) => Elements::U64(
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| sub_mod_u64(x, y, *qm1))
                    .collect(),
            ),
            (Width::U128 { qm1 }, Elements::U128(a), Elements::U128(b)) => Elements::U128(
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| if x >= y { x - y } else { x + (qm1 - y) + 1 })
                    .collect(),
            ),
            (_, a, b) => Elements::Big(
                (0..a.len())
                    .map(|i| {
                        let (x, y) = (a.get_big(i), b.get_big(i));
                        if x >= y {
                            x - y
                        } else {
                            x + &self.order - y
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// Whether every element is below `q`.
    pub(crate) fn all_below_order(&self, e: &Elements) -> bool {
        match (&self.width, e) {
            (Width::U64 { qm1 }, Elements::U64(v)) => v.iter().all(|x| x <= qm1),
            (Width::U128 { qm1 }, Elements::U128(v)) => v.iter().all(|x| x <= qm1),
            (Width::Big, Elements::Big(v)) => v.iter().all(|x| x < &self.order),
            _ => false,
        }
    }
}

/// `(a + b) mod q` for `a, b < q ≤ 2^64`, without overflow.
#[inline]
pub(crate) fn add_mod_u64(a: u64, b: u64, qm1: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    if carry || s > qm1 {
        s.wrapping_sub(qm1).wrapping_sub(1)
    } else {
        s
    }
}

/// `(a + b) mod q` for `a, b < q ≤ 2^128`, without overflow.
#[inline]
pub(crate) fn add_mod_u128(a: u128, b: u128, qm1: u128) -> u128 {
    let (s, carry) = a.overflowing_add(b);
    if carry || s > qm1 {
        s.wrapping_sub(qm1).wrapping_sub(1)
    } else {
        s
    }
}

/// `(a − b) mod q` for `a, b < q ≤ 2^64`, branch-free (q = 2^64 wraps to 0, as it should).
#[inline]
pub(crate) fn sub_mod_u64(a: u64, b: u64, qm1: u64) -> u64 {
    let q = qm1.wrapping_add(1);
    a.wrapping_sub(b)
        .wrapping_add(q & ((a < b) as u64).wrapping_neg())
}

fn add_u64(a: &mut [u64], b: &[u64], qm1: u64) {
    if qm1 < (1 << 63) {
        // q ≤ 2^63: the sum cannot overflow, so the loop is a clean, vectorisable select.
        let q = qm1 + 1;
        for (x, &y) in a.iter_mut().zip(b) {
            let s = *x + y;
            // Branch-free: whether s ≥ q is a coin flip for uniform inputs.
            *x = s - (q & ((s >= q) as u64).wrapping_neg());
        }
    } else {
        for (x, &y) in a.iter_mut().zip(b) {
            *x = add_mod_u64(*x, y, qm1);
        }
    }
}

fn add_u128(a: &mut [u128], b: &[u128], qm1: u128) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = add_mod_u128(*x, y, qm1);
    }
}

/// Writes `v` as `bpn ≤ 8` little-endian bytes each, with the width known at compile time.
fn write_u64s(v: &[u64], bpn: usize, out: &mut Vec<u8>) {
    fn write<const N: usize>(v: &[u64], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + N * v.len(), 0);
        for (chunk, x) in out[start..].chunks_exact_mut(N).zip(v) {
            chunk.copy_from_slice(&x.to_le_bytes()[..N]);
        }
    }
    match bpn {
        1 => write::<1>(v, out),
        2 => write::<2>(v, out),
        3 => write::<3>(v, out),
        4 => write::<4>(v, out),
        5 => write::<5>(v, out),
        6 => write::<6>(v, out),
        7 => write::<7>(v, out),
        _ => write::<8>(v, out),
    }
}

/// Reads `bpn ≤ 8`-byte little-endian numbers into `out`; whether all are `≤ qm1`.
fn read_u64s(bytes: &[u8], bpn: usize, qm1: u64, out: &mut Vec<u64>) -> bool {
    fn read<const N: usize>(bytes: &[u8], qm1: u64, out: &mut Vec<u64>) -> bool {
        let mut max = 0u64;
        out.extend(bytes.chunks_exact(N).map(|c| {
            let mut b = [0u8; 8];
            b[..N].copy_from_slice(c);
            let x = u64::from_le_bytes(b);
            max = max.max(x);
            x
        }));
        max <= qm1
    }
    match bpn {
        1 => read::<1>(bytes, qm1, out),
        2 => read::<2>(bytes, qm1, out),
        3 => read::<3>(bytes, qm1, out),
        4 => read::<4>(bytes, qm1, out),
        5 => read::<5>(bytes, qm1, out),
        6 => read::<6>(bytes, qm1, out),
        7 => read::<7>(bytes, qm1, out),
        _ => read::<8>(bytes, qm1, out),
    }
}

/// A vector of group elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elements {
    /// Elements of a group with `q ≤ 2^64`.
    U64(Vec<u64>),
    /// Elements of a group with `q ≤ 2^128`.
    U128(Vec<u128>),
    /// Elements of a `Bmax` group.
    Big(Vec<BigUint>),
}

impl Elements {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Elements::U64(v) => v.len(),
            Elements::U128(v) => v.len(),
            Elements::Big(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a big integer (slow; for tests, display and the big-integer path).
    pub fn get_big(&self, i: usize) -> BigUint {
        match self {
            Elements::U64(v) => v.get(i).copied().map(BigUint::from),
            Elements::U128(v) => v.get(i).copied().map(BigUint::from),
            Elements::Big(v) => v.get(i).cloned(),
        }
        .unwrap_or_default()
    }

    /// All elements as big integers.
    pub fn to_big_vec(&self) -> Vec<BigUint> {
        (0..self.len()).map(|i| self.get_big(i)).collect()
    }

    /// Appends the elements, `bpn` little-endian bytes each, to `out`.
    pub fn write_le(&self, bpn: usize, out: &mut Vec<u8>) {
        out.reserve(bpn * self.len());
        match self {
            Elements::U64(v) => {
                if bpn <= 8 {
                    write_u64s(v, bpn, out);
                } else {
                    for x in v {
                        out.extend_from_slice(&x.to_le_bytes());
                        out.resize(out.len() + bpn - 8, 0);
                    }
                }
            }
            Elements::U128(v) => {
                for x in v {
                    let b = x.to_le_bytes();
                    out.extend_from_slice(&b[..bpn.min(16)]);
                    out.resize(out.len() + bpn.saturating_sub(16), 0);
                }
            }
            Elements::Big(v) => {
                for x in v {
                    let b = x.to_bytes_le();
                    let n = b.len().min(bpn);
                    out.extend_from_slice(&b[..n]);
                    out.resize(out.len() + bpn - n, 0);
                }
            }
        }
    }

    /// Reads `count` elements of `bpn` bytes each from `bytes` (exactly `count · bpn` bytes)
    /// for `group`. Returns `None` if an element is not below the order.
    pub(crate) fn read_le(group: &Group, bytes: &[u8], count: usize) -> Option<Elements> {
        let bpn = group.bpn;
        debug_assert_eq!(bytes.len(), count * bpn);
        match group.width {
            Width::U64 { qm1 } => {
                let mut v = Vec::with_capacity(count);
                let mut ok = true;
                if bpn <= 8 {
                    ok = read_u64s(bytes, bpn, qm1, &mut v);
                } else {
                    for c in bytes.chunks_exact(bpn) {
                        let (lo, hi) = c.split_at(8);
                        let mut b = [0u8; 8];
                        b.copy_from_slice(lo);
                        let x = u64::from_le_bytes(b);
                        ok &= hi.iter().all(|&h| h == 0) && x <= qm1;
                        v.push(x);
                    }
                }
                ok.then_some(Elements::U64(v))
            }
            Width::U128 { qm1 } => {
                let mut v = Vec::with_capacity(count);
                for c in bytes.chunks_exact(bpn) {
                    let n = bpn.min(16);
                    let mut b = [0u8; 16];
                    b[..n].copy_from_slice(&c[..n]);
                    let x = u128::from_le_bytes(b);
                    if c[n..].iter().any(|&h| h != 0) || x > qm1 {
                        return None;
                    }
                    v.push(x);
                }
                Some(Elements::U128(v))
            }
            Width::Big => {
                let mut v = Vec::with_capacity(count);
                for c in bytes.chunks_exact(bpn) {
                    let x = BigUint::from_bytes_le(c);
                    if x >= group.order {
                        return None;
                    }
                    v.push(x);
                }
                Some(Elements::Big(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_add_equals_sequential() {
        use crate::mask::config::{BoundType, DataType, GroupType, MaskConfig, ModelType};
        // One u64 group (the default) and two u128 groups.
        let wide = |data_type| MaskConfig {
            group_type: GroupType::Prime,
            data_type,
            bound_type: BoundType::B6,
            model_type: ModelType::M12,
        };
        for config in [
            MaskConfig::default(),
            wide(DataType::F32),
            wide(DataType::F64),
        ] {
            let g = Group::new(config);
            let mut rng = MaskRng::from_seed([5; 32]);
            let a = g.sample(&mut rng, 300_001);
            let b = g.sample(&mut rng, 300_001);
            let (mut seq, mut par) = (a.clone(), a);
            g.add_assign(&mut seq, &b);
            g.add_assign_split(&mut par, &b, 4, 1 << 16);
            assert_eq!(seq, par, "{config}");
        }
    }

    #[test]
    fn add_mod_edges() {
        let qm1 = u64::MAX; // q = 2^64
        assert_eq!(add_mod_u64(u64::MAX, 1, qm1), 0);
        assert_eq!(add_mod_u64(u64::MAX, u64::MAX, qm1), u64::MAX - 1);
        let qm1 = u128::MAX;
        assert_eq!(add_mod_u128(u128::MAX, 2, qm1), 1);
        let qm1 = 10u128; // q = 11
        assert_eq!(add_mod_u128(10, 10, qm1), 9);
        assert_eq!(add_mod_u64(5, 5, 10), 10);
        assert_eq!(add_mod_u64(6, 5, 10), 0);
    }
}
