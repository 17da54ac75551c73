//! Models and scalars (SPEC §3.3).
//!
//! * [`Weights`] borrows a local model as a primitive slice; masking reads it directly.
//! * [`Scalar`] is a participant's aggregation weight, an exact non-negative rational.
//! * [`Model`] is the reference's exact representation (one rational per weight); it is what
//!   the v1 REST API serves (`GET /model`, bincode) and converts to and from every primitive
//!   type. Conversions from primitives are exact. Conversions to floats are **correctly
//!   rounded** (round to nearest, ties to even) and always terminate, unlike the reference.
//!   Conversions to integers truncate toward zero. Out-of-range values are errors.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::mask::config::DataType;
use crate::mask::fixed::Dyadic;

/// Errors converting models and scalars.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConversionError {
    /// NaN or an infinity where only finite values are allowed.
    #[error("weight {index} is not finite")]
    NonFinite {
        /// Position of the value.
        index: usize,
    },
    /// A value does not fit the target type.
    #[error("weight {index} is out of range for {target}")]
    OutOfRange {
        /// Position of the value.
        index: usize,
        /// The target type.
        target: &'static str,
    },
    /// A scalar that is negative, NaN or infinite.
    #[error("scalar must be finite and non-negative, got {0}")]
    InvalidScalar(f64),
    /// A rational with a zero denominator.
    #[error("zero denominator")]
    ZeroDenominator,
}

/// A borrowed local model of one primitive type.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    /// 32-bit floats.
    F32(&'a [f32]),
    /// 64-bit floats.
    F64(&'a [f64]),
    /// 32-bit integers.
    I32(&'a [i32]),
    /// 64-bit integers.
    I64(&'a [i64]),
}

impl Weights<'_> {
    /// Number of weights.
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(v) => v.len(),
            Weights::F64(v) => v.len(),
            Weights::I32(v) => v.len(),
            Weights::I64(v) => v.len(),
        }
    }

    /// Whether there are no weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The primitive type.
    pub fn data_type(&self) -> DataType {
        match self {
            Weights::F32(_) => DataType::F32,
            Weights::F64(_) => DataType::F64,
            Weights::I32(_) => DataType::I32,
            Weights::I64(_) => DataType::I64,
        }
    }

    /// Weight `i` as an exact dyadic rational; `Err` if it is not finite.
    #[inline]
    pub(crate) fn dyadic(&self, i: usize) -> Result<Dyadic, ConversionError> {
        let d = match self {
            Weights::F32(v) => Dyadic::from_f32(v[i]),
            Weights::F64(v) => Dyadic::from_f64(v[i]),
            Weights::I32(v) => Some(Dyadic::from_i64(v[i] as i64)),
            Weights::I64(v) => Some(Dyadic::from_i64(v[i])),
        };
        d.ok_or(ConversionError::NonFinite { index: i })
    }

    /// Weight `i` as an exact rational; `Err` if it is not finite.
    pub fn rational(&self, i: usize) -> Result<BigRational, ConversionError> {
        self.dyadic(i).map(Dyadic::to_rational)
    }
}

/// A participant's aggregation weight: an exact, finite, non-negative rational.
///
/// For federated averaging use `s_j ∝ n_j` (the participant's sample count), normalised so
/// that `s_j · |w| ≤ B` for the configured bound `B`, e.g. `s_j = n_j / N_max` where `N_max`
/// bounds every participant's sample count. Scalars above the unit bound are clamped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    value: BigRational,
    dyadic: Option<Dyadic>,
}

impl Default for Scalar {
    fn default() -> Self {
        Self::unit()
    }
}

impl Scalar {
    /// The scalar 1 (every participant weighs the same).
    pub fn unit() -> Self {
        Self::from_f64(1.0).unwrap_or_else(|_| Self {
            value: BigRational::one(),
            dyadic: None,
        })
    }

    /// The exact value of a finite, non-negative `f64` (the strict conversion).
    pub fn from_f64(x: f64) -> Result<Self, ConversionError> {
        if !x.is_finite() || x < 0.0 {
            return Err(ConversionError::InvalidScalar(x));
        }
        let d = Dyadic::from_f64(x).ok_or(ConversionError::InvalidScalar(x))?;
        let d = Dyadic { neg: false, ..d };
        Ok(Self {
            value: d.to_rational(),
            dyadic: Some(d),
        })
    }

    /// `numer / denom` exactly.
    pub fn from_ratio(numer: u64, denom: u64) -> Result<Self, ConversionError> {
        if denom == 0 {
            return Err(ConversionError::ZeroDenominator);
        }
        let value = BigRational::new(BigInt::from(numer), BigInt::from(denom));
        Ok(Self::from_rational_unchecked(value))
    }

    fn from_rational_unchecked(value: BigRational) -> Self {
        let dyadic = dyadic_of(&value);
        Self { value, dyadic }
    }

    /// The exact value.
    pub fn value(&self) -> &BigRational {
        &self.value
    }

    /// `min(self, bound)` (the reference clamps scalars from above only).
    pub fn clamped(&self, bound: &BigUint) -> Scalar {
        let b = BigRational::from_integer(BigInt::from(bound.clone()));
        if self.value > b {
            Self::from_rational_unchecked(b)
        } else {
            self.clone()
        }
    }

    pub(crate) fn dyadic(&self) -> Option<Dyadic> {
        self.dyadic
    }

    /// A correctly rounded `f64` approximation.
    pub fn to_f64(&self) -> f64 {
        ratio_to_float(&self.value, FloatKind::F64).unwrap_or(f64::MAX)
    }
}

/// The dyadic form of a rational whose denominator is a power of two and whose numerator
/// fits 128 bits.
fn dyadic_of(r: &BigRational) -> Option<Dyadic> {
    let den = r.denom().magnitude();
    let k = den.trailing_zeros().unwrap_or(0);
    if den != &(BigUint::one() << k) {
        return None;
    }
    let mant = r.numer().magnitude().to_u128()?;
    Some(Dyadic {
        neg: r.is_negative(),
        mant,
        exp: -(i32::try_from(k).ok()?),
    })
}

/// The target of a float conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatKind {
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl FloatKind {
    fn mantissa_bits(self) -> u64 {
        match self {
            FloatKind::F32 => 24,
            FloatKind::F64 => 53,
        }
    }

    fn min_lsb_exponent(self) -> i64 {
        match self {
            FloatKind::F32 => -149,
            FloatKind::F64 => -1074,
        }
    }

    fn max(self) -> f64 {
        match self {
            FloatKind::F32 => f32::MAX as f64,
            FloatKind::F64 => f64::MAX,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FloatKind::F32 => "f32",
            FloatKind::F64 => "f64",
        }
    }
}

/// `2^e` as an `f64`, exactly, for `−1074 ≤ e ≤ 1023`.
fn pow2(e: i64) -> f64 {
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

/// `num / den` rounded to nearest-even in `kind`'s precision, returned as an `f64` (exact for
/// `F32` as well). `Err(())` if `|num / den|` exceeds the type's maximum.
pub(crate) fn round_ratio(
    neg: bool,
    num: &BigUint,
    den: &BigUint,
    kind: FloatKind,
) -> Result<f64, ()> {
    if num.is_zero() {
        return Ok(if neg { -0.0 } else { 0.0 });
    }
    let p = kind.mantissa_bits() as i64;
    // q = floor(num · 2^s / den) gets p + 2 or p + 3 bits.
    let s = p + 2 - (num.bits() as i64 - den.bits() as i64);
    let (q, r) = if s >= 0 {
        (num << (s as u64)).div_rem(den)
    } else {
        num.div_rem(&(den << (s.unsigned_abs())))
    };
    let sticky = !r.is_zero();
    let qbits = q.bits() as i64;
    // Value = q · 2^−s (+ sticky). Keep p bits, or fewer for subnormals.
    let mut drop = qbits - p;
    let lsb = -s + drop;
    if lsb < kind.min_lsb_exponent() {
        drop += kind.min_lsb_exponent() - lsb;
    }
    let drop_u = drop.max(0) as u64;
    let mut mant = (&q >> drop_u).to_u64().unwrap_or(u64::MAX);
    if drop_u > 0 {
        let half = q.bit(drop_u - 1);
        let rest =
            sticky || (drop_u > 1 && !(&q & ((BigUint::one() << (drop_u - 1)) - 1u32)).is_zero());
        if half && (rest || mant & 1 == 1) {
            mant += 1;
        }
    }
    let exp = -s + drop_u as i64;
    // mant ≤ 2^p and exp ≥ the smallest subnormal exponent, so mant · 2^exp is exact
    // whenever it is finite.
    if exp > 1023 {
        return Err(());
    }
    let value = (mant as f64) * pow2(exp);
    if value > kind.max() || value.is_infinite() {
        return Err(());
    }
    Ok(if neg { -value } else { value })
}

/// The correctly rounded float nearest to `r`; `Err(())` if `|r|` exceeds the type's max.
pub(crate) fn ratio_to_float(r: &BigRational, kind: FloatKind) -> Result<f64, ()> {
    // The reference's range check is on the exact value: |r| ≤ MAX.
    let max = BigRational::from_float(kind.max()).unwrap_or_else(BigRational::zero);
    if r.abs() > max {
        return Err(());
    }
    round_ratio(
        r.is_negative(),
        r.numer().magnitude(),
        r.denom().magnitude(),
        kind,
    )
}

/// An exact model: one rational per weight (the reference's `Model`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Model(pub Vec<BigRational>);

macro_rules! float_conversions {
    ($from:ident, $from_bounded:ident, $to:ident, $t:ty, $kind:expr) => {
        /// Exact conversion; non-finite values are errors.
        pub fn $from(values: &[$t]) -> Result<Model, ConversionError> {
            values
                .iter()
                .enumerate()
                .map(|(index, &x)| {
                    BigRational::from_float(x).ok_or(ConversionError::NonFinite { index })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Model)
        }

        /// Exact conversion with NaN → 0 and ±∞ → ±MAX (the reference's bounded variant).
        pub fn $from_bounded(values: &[$t]) -> Model {
            Model(
                values
                    .iter()
                    .map(|&x| {
                        let x = if x.is_nan() {
                            0.0
                        } else if x == <$t>::INFINITY {
                            <$t>::MAX
                        } else if x == <$t>::NEG_INFINITY {
                            <$t>::MIN
                        } else {
                            x
                        };
                        BigRational::from_float(x).unwrap_or_else(BigRational::zero)
                    })
                    .collect(),
            )
        }

        /// Correctly rounded conversion; values beyond the type's range are errors.
        pub fn $to(&self) -> Result<Vec<$t>, ConversionError> {
            self.0
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    ratio_to_float(r, $kind).map(|v| v as $t).map_err(|_| {
                        ConversionError::OutOfRange {
                            index,
                            target: $kind.name(),
                        }
                    })
                })
                .collect()
        }
    };
}

macro_rules! int_conversions {
    ($from:ident, $to:ident, $t:ty, $name:literal) => {
        /// Exact conversion.
        pub fn $from(values: &[$t]) -> Model {
            Model(
                values
                    .iter()
                    .map(|&x| BigRational::from_integer(BigInt::from(x)))
                    .collect(),
            )
        }

        /// Truncation toward zero; values beyond the type's range are errors.
        pub fn $to(&self) -> Result<Vec<$t>, ConversionError> {
            self.0
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    r.to_integer().to_string().parse::<$t>().map_err(|_| {
                        ConversionError::OutOfRange {
                            index,
                            target: $name,
                        }
                    })
                })
                .collect()
        }
    };
}

impl Model {
    float_conversions!(from_f32, from_f32_bounded, to_f32, f32, FloatKind::F32);
    float_conversions!(from_f64, from_f64_bounded, to_f64, f64, FloatKind::F64);
    int_conversions!(from_i32, to_i32, i32, "i32");
    int_conversions!(from_i64, to_i64, i64, "i64");

    /// Exact conversion of borrowed weights; non-finite values are errors.
    pub fn from_weights(w: Weights<'_>) -> Result<Model, ConversionError> {
        match w {
            Weights::F32(v) => Self::from_f32(v),
            Weights::F64(v) => Self::from_f64(v),
            Weights::I32(v) => Ok(Self::from_i32(v)),
            Weights::I64(v) => Ok(Self::from_i64(v)),
        }
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the model is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Builds a rational from a sign and magnitudes, reduced; `None` for a zero denominator.
pub(crate) fn rational(neg: bool, num: BigUint, den: BigUint) -> Option<BigRational> {
    if den.is_zero() {
        return None;
    }
    let sign = if neg && !num.is_zero() {
        Sign::Minus
    } else {
        Sign::Plus
    };
    Some(BigRational::new(
        BigInt::from_biguint(sign, num),
        BigInt::from(den),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn correctly_rounded() {
        let m = Model(vec![r(1, 3), r(-5, 2), r(0, 1), r(5, 14)]);
        assert_eq!(m.to_f64().unwrap(), vec![1.0 / 3.0, -2.5, 0.0, 5.0 / 14.0]);
        assert_eq!(
            m.to_f32().unwrap(),
            vec![1.0f32 / 3.0, -2.5, 0.0, 5.0f32 / 14.0]
        );
        // (2^64 + 2^11 + 1) / 2^64: the reference says 1.0; the correct answer is 1 + 2^-52.
        let big = BigRational::new(
            BigInt::from((1u128 << 64) + (1 << 11) + 1),
            BigInt::from(1u128 << 64),
        );
        assert_eq!(Model(vec![big]).to_f64().unwrap(), vec![1.0 + f64::EPSILON]);
    }

    #[test]
    fn subnormals_and_extremes_roundtrip() {
        let values = [
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            1e-310,
            123.456,
        ];
        let m = Model::from_f64(&values).unwrap();
        assert_eq!(m.to_f64().unwrap(), values);
        let values32 = [f32::MIN_POSITIVE, 1e-45, f32::MAX, -3.5e-42, 0.1];
        let m = Model::from_f32(&values32).unwrap();
        assert_eq!(m.to_f32().unwrap(), values32);
    }

    #[test]
    fn ranges_and_non_finite() {
        assert_eq!(
            Model::from_f32(&[1.0, f32::NAN]),
            Err(ConversionError::NonFinite { index: 1 })
        );
        let b = Model::from_f64_bounded(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(b.to_f64().unwrap(), vec![0.0, f64::MAX, f64::MIN]);
        let too_big = Model::from_f64(&[f64::MAX]).unwrap();
        assert!(matches!(
            too_big.to_f32(),
            Err(ConversionError::OutOfRange { index: 0, .. })
        ));
        let m = Model(vec![r(-7, 2), r(7, 2)]);
        assert_eq!(m.to_i32().unwrap(), vec![-3, 3]);
        assert!(Model::from_i64(&[i64::MAX]).to_i32().is_err());
    }

    #[test]
    fn scalar_rules() {
        assert!(Scalar::from_f64(-1.0).is_err());
        assert!(Scalar::from_f64(f64::NAN).is_err());
        assert_eq!(Scalar::from_f64(0.25).unwrap().value(), &r(1, 4));
        assert_eq!(Scalar::from_ratio(7, 4).unwrap().dyadic().unwrap().mant, 7);
        assert!(Scalar::from_ratio(1, 3).unwrap().dyadic().is_none());
        assert_eq!(
            Scalar::from_ratio(1, 0),
            Err(ConversionError::ZeroDenominator)
        );
    }
}
