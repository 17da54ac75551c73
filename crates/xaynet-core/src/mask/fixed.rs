//! Exact fixed-point shifting of weights: `t = floor((clamp(s·w, −B, B) + B) · E)`.
//!
//! Floats and integers are dyadic rationals `±m · 2^e`, and the scalar is one too (it comes
//! from an `f64`), so the product `s·w` is dyadic with a mantissa below 2^117. For bounded
//! configurations `B ≤ 10^6` and `E ≤ 10^20`, which lets the whole computation run in
//! `u128` with one 256-bit intermediate product where needed — exact, with no rational
//! arithmetic and no allocation. The big-integer path (`shift_big`) does the same with
//! `num` rationals, as the reference did; both must agree (property-tested).

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

use super::config::MaskConfig;

/// An exact dyadic rational `±mant · 2^exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dyadic {
    pub neg: bool,
    pub mant: u128,
    pub exp: i32,
}

impl Dyadic {
    pub const ZERO: Dyadic = Dyadic {
        neg: false,
        mant: 0,
        exp: 0,
    };

    pub fn from_f64(x: f64) -> Option<Self> {
        if !x.is_finite() {
            return None;
        }
        let bits = x.to_bits();
        let neg = bits >> 63 == 1;
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, exp) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp - 1075)
        };
        Some(
            Self {
                neg,
                mant: mant as u128,
                exp,
            }
            .normalized(),
        )
    }

    pub fn from_f32(x: f32) -> Option<Self> {
        if !x.is_finite() {
            return None;
        }
        let bits = x.to_bits();
        let neg = bits >> 31 == 1;
        let exp = ((bits >> 23) & 0xff) as i32;
        let frac = bits & ((1u32 << 23) - 1);
        let (mant, exp) = if exp == 0 {
            (frac, -149)
        } else {
            (frac | (1 << 23), exp - 150)
        };
        Some(
            Self {
                neg,
                mant: mant as u128,
                exp,
            }
            .normalized(),
        )
    }

    pub fn from_i64(x: i64) -> Self {
        Self {
            neg: x < 0,
            mant: x.unsigned_abs() as u128,
            exp: 0,
        }
        .normalized()
    }

    /// Strips trailing zero bits so that mantissas stay short (1.0 becomes `1 · 2^0`).
    fn normalized(self) -> Self {
        if self.mant == 0 {
            return Self::ZERO;
        }
        let tz = self.mant.trailing_zeros();
        Self {
            neg: self.neg,
            mant: self.mant >> tz,
            exp: self.exp + tz as i32,
        }
    }

    /// The exact product, or `None` if the mantissa would not fit in 128 bits.
    #[inline]
    pub fn mul(self, other: Dyadic) -> Option<Dyadic> {
        Some(Dyadic {
            neg: self.neg != other.neg,
            mant: self.mant.checked_mul(other.mant)?,
            exp: self.exp + other.exp,
        })
    }

    /// The exact value as a rational.
    pub fn to_rational(self) -> BigRational {
        let m = BigInt::from_biguint(
            if self.neg { Sign::Minus } else { Sign::Plus },
            BigUint::from(self.mant),
        );
        let two = BigInt::from(2u32);
        if self.exp >= 0 {
            BigRational::from_integer(m * two.pow(self.exp.unsigned_abs()))
        } else {
            BigRational::new(m, two.pow(self.exp.unsigned_abs()))
        }
    }
}

/// `(a · b) >> k` and whether bits were shifted out, with a full 256-bit product.
#[inline]
fn mul_shr(a: u128, b: u128, k: u32) -> (u128, bool) {
    if let Some(p) = a.checked_mul(b) {
        if k >= 128 {
            return (0, p != 0);
        }
        return (p >> k, p & ((1u128 << k) - 1) != 0);
    }
    // Schoolbook 128×128 → 256 with 64-bit limbs.
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let lo = (p00 as u64 as u128) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    if k >= 256 {
        return (0, true);
    }
    if k >= 128 {
        let s = k - 128;
        let q = if s == 0 { hi } else { hi >> s };
        let rem = lo != 0 || (s > 0 && hi & ((1u128 << s) - 1) != 0);
        return (q, rem);
    }
    if k == 0 {
        return (lo, false); // hi must be 0 here for the result to be meaningful
    }
    let q = (lo >> k) | (hi << (128 - k));
    (q, lo & ((1u128 << k) - 1) != 0)
}

/// The constants of the fixed-width path for one bounded configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedShift {
    b: u128,
    e: u128,
    be: u128,
}

impl FixedShift {
    /// `None` for `Bmax` configurations, which need big integers.
    pub fn new(config: MaskConfig) -> Option<Self> {
        if !config.is_bounded() {
            return None;
        }
        let b = config.add_shift().to_u128()?;
        let e = config.exp_shift().to_u128()?;
        Some(Self {
            b,
            e,
            be: b.checked_mul(e)?,
        })
    }

    /// `floor((clamp(x, −B, B) + B) · E)`, exactly.
    #[inline]
    pub fn shift(&self, x: Dyadic) -> u128 {
        if x.mant == 0 {
            return self.be;
        }
        let at_least_b = if x.exp >= 0 {
            let e = x.exp as u32;
            e >= x.mant.leading_zeros() || (x.mant << e) >= self.b
        } else {
            let k = x.exp.unsigned_abs();
            // |x| ≥ B ⇔ mant ≥ B · 2^k; if B · 2^k needs more than 128 bits it exceeds mant.
            k < self.b.leading_zeros() && x.mant >= (self.b << k)
        };
        if at_least_b {
            return if x.neg { 0 } else { 2 * self.be };
        }
        // |x| < B, so |x| · E < B · E and the quotient fits.
        let (q, inexact) = if x.exp >= 0 {
            ((x.mant << x.exp as u32) * self.e, false)
        } else {
            mul_shr(x.mant, self.e, x.exp.unsigned_abs())
        };
        if x.neg {
            self.be - q - inexact as u128
        } else {
            self.be + q
        }
    }
}

/// A specialised form of [`FixedShift::shift`] for `f32` weights and a fixed scalar, used by
/// the masking hot loop: one 64×64 multiply for `m_w · m_s`, one 128×64 multiply by `E`, one
/// shift. Valid when `bits(m_s) + 24 + bits(E) ≤ 128`, which holds for every `f64` scalar
/// and `E ≤ 10^15`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32Shift {
    ms: u64,
    es: i32,
    b: u128,
    e: u64,
    be: u128,
}

impl F32Shift {
    pub fn new(fs: FixedShift, scalar: Dyadic) -> Option<Self> {
        let ms = u64::try_from(scalar.mant).ok()?;
        let e = u64::try_from(fs.e).ok()?;
        let bits = 64 - ms.leading_zeros() + 24 + (64 - e.leading_zeros());
        (bits <= 128 && !scalar.neg).then_some(Self {
            ms,
            es: scalar.exp,
            b: fs.b,
            e,
            be: fs.be,
        })
    }

    /// `floor((clamp(s·w, −B, B) + B) · E)` for a finite `w`; `None` if `w` is not finite.
    #[inline(always)]
    pub fn shift(&self, w: f32) -> Option<u128> {
        let bits = w.to_bits();
        let biased = (bits >> 23) & 0xff;
        if biased == 0xff {
            return None;
        }
        let frac = (bits & 0x7f_ffff) as u64;
        let (m, e) = if biased == 0 {
            (frac, -149)
        } else {
            (frac | 0x80_0000, biased as i32 - 150)
        };
        let p = m as u128 * self.ms as u128;
        if p == 0 {
            return Some(self.be);
        }
        let exp = e + self.es;
        let (q, inexact) = if exp >= 0 {
            // |x| = p · 2^exp ≥ 1; integral. Clamp unless it is below B.
            let exp = exp as u32;
            if exp >= p.leading_zeros() || (p << exp) >= self.b {
                (self.be, false)
            } else {
                ((p << exp) * self.e as u128, false)
            }
        } else {
            let k = exp.unsigned_abs();
            let pe = p * self.e as u128;
            if k >= 128 {
                (0, true)
            } else {
                let q = pe >> k;
                (q, (q << k) != pe)
            }
        };
        let neg = bits >> 31 != 0;
        // q ≥ B·E ⇔ |x| ≥ B (B·E is an integer): clamp.
        Some(if q >= self.be {
            if neg {
                0
            } else {
                2 * self.be
            }
        } else if neg {
            self.be - q - inexact as u128
        } else {
            self.be + q
        })
    }
}

/// The reference's computation with rationals: `floor((clamp(x, −B, B) + B) · E)`.
pub(crate) fn shift_big(x: &BigRational, b: &BigRational, e: &BigInt) -> BigUint {
    let clamped = if x > b {
        b.clone()
    } else if x < &-b {
        -b
    } else {
        x.clone()
    };
    let shifted = (clamped + b) * BigRational::from_integer(e.clone());
    // Non-negative, so truncation is the floor.
    let t = shifted.numer().div_floor(shifted.denom());
    if t.is_negative() || t.is_zero() {
        BigUint::default()
    } else {
        t.magnitude().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::config::{BoundType, DataType, GroupType, ModelType};

    fn config(data: DataType, bound: BoundType) -> MaskConfig {
        MaskConfig {
            group_type: GroupType::Prime,
            data_type: data,
            bound_type: bound,
            model_type: ModelType::M3,
        }
    }

    fn check(c: MaskConfig, x: Dyadic) {
        let fixed = FixedShift::new(c).unwrap();
        let b = BigRational::from_integer(BigInt::from(c.add_shift()));
        let e = BigInt::from(c.exp_shift());
        assert_eq!(
            BigUint::from(fixed.shift(x)),
            shift_big(&x.to_rational(), &b, &e),
            "{x:?} {c}"
        );
    }

    #[test]
    fn fixed_matches_big_on_edges() {
        let values = [
            0.0,
            1.0,
            -1.0,
            1.5,
            -1.5,
            1e-11,
            -1e-11,
            0.999_999_999_99,
            -0.999_999_999_99,
            5e-324,
            -5e-324,
            1e300,
            -1e300,
            99.999,
            100.0,
            -100.0,
            0.3,
            -0.3,
            123_456.789,
            1e-20,
            -1e-21,
        ];
        for data in [DataType::F32, DataType::F64, DataType::I32, DataType::I64] {
            for bound in [BoundType::B0, BoundType::B2, BoundType::B4, BoundType::B6] {
                let c = config(data, bound);
                for v in values {
                    check(c, Dyadic::from_f64(v).unwrap());
                    if let Some(d) = Dyadic::from_f32(v as f32) {
                        check(c, d);
                    }
                    let s = Dyadic::from_f64(0.3).unwrap();
                    check(c, Dyadic::from_f64(v).unwrap().mul(s).unwrap());
                }
                for i in [i64::MIN, i64::MAX, -7, 7, 1_000_000, -1_000_001] {
                    check(c, Dyadic::from_i64(i));
                    let s = Dyadic::from_f64(1e-6).unwrap();
                    check(c, Dyadic::from_i64(i).mul(s).unwrap());
                }
            }
        }
    }

    #[test]
    fn f32_fast_path_matches() {
        for bound in [BoundType::B0, BoundType::B2, BoundType::B4, BoundType::B6] {
            let c = config(DataType::F32, bound);
            let fs = FixedShift::new(c).unwrap();
            for s in [1.0, 0.5, 0.3, 1e-7, 3.0, 0.0] {
                let sd = Dyadic::from_f64(s).unwrap();
                let fast = F32Shift::new(fs, sd).unwrap();
                for w in [
                    0.0f32,
                    -0.0,
                    1.0,
                    -1.0,
                    1.5,
                    -1.5,
                    1e-11,
                    -1e-11,
                    0.1,
                    -0.1,
                    1e-45,
                    -1e-45,
                    f32::MAX,
                    f32::MIN,
                    0.999_999_9,
                    99.5,
                    -123_456.7,
                    1e30,
                ] {
                    let general = fs.shift(Dyadic::from_f32(w).unwrap().mul(sd).unwrap());
                    assert_eq!(fast.shift(w), Some(general), "{w} {s} {c}");
                }
                assert_eq!(fast.shift(f32::NAN), None);
                assert_eq!(fast.shift(f32::INFINITY), None);
            }
        }
    }

    #[test]
    fn wide_product() {
        let (q, r) = mul_shr(u128::MAX, u128::MAX, 200);
        // (2^128 − 1)^2 >> 200 = 2^56 − 1 (top bits of 2^256 − 2^129 + 1).
        assert_eq!(q, (1u128 << 56) - 1);
        assert!(r);
        assert_eq!(mul_shr(3, 5, 1), (7, true));
        assert_eq!(mul_shr(1 << 100, 1 << 100, 150), (1 << 50, false));
    }
}
