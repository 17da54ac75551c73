//! Masking a local model (SPEC §3.4), aggregating masked objects (§3.5) and unmasking the
//! weighted average (§3.7).
//!
//! Bounded configurations run entirely in `u64`/`u128` (module `fixed`); `Bmax`
//! configurations and non-dyadic scalars take the exact big-integer path. Both produce the
//! same numbers, which `tests/masking_props.rs` checks on random inputs.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use super::config::MaskConfigPair;
use super::fixed::{shift_big, F32Shift, FixedShift};
use super::group::{add_mod_u128, add_mod_u64, sub_mod_u64, Elements, Group, Width};
use super::object::{MaskObject, MaskUnit, MaskVect};
use super::seed::MaskSeed;
use crate::model::{
    ratio_to_float, rational, round_ratio, ConversionError, FloatKind, Model, Scalar, Weights,
};

/// Errors while masking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaskError {
    /// A weight could not be converted.
    #[error(transparent)]
    Conversion(#[from] ConversionError),
}

/// Errors while aggregating.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregationError {
    /// The object's vector config differs from the aggregation's.
    #[error("model config mismatch")]
    ModelMismatch,
    /// The object's scalar config differs from the aggregation's.
    #[error("scalar config mismatch")]
    ScalarMismatch,
    /// The object has the wrong number of elements.
    #[error("expected {expected} elements, got {actual}")]
    LengthMismatch {
        /// The model length.
        expected: usize,
        /// The object's length.
        actual: usize,
    },
    /// The aggregate already holds the maximum number of models of the config.
    #[error("too many models: the config allows at most {0}")]
    TooManyModels(u64),
    /// An element is not below the group order.
    #[error("invalid object: element out of range")]
    InvalidObject,
}

/// Errors while unmasking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnmaskError {
    /// Nothing was aggregated.
    #[error("no models were aggregated")]
    NoModels,
    /// The mask does not fit the aggregate.
    #[error("mask does not match the aggregate: {0}")]
    InvalidMask(AggregationError),
    /// The unmasked sum of scalars is zero: there is no weighted average.
    #[error("the sum of the participants' scalars is zero")]
    ZeroScalarSum,
    /// The unmasked values are impossible for honest participants (wrong mask).
    #[error("unmasked values are out of range: the mask does not belong to this aggregate")]
    OutOfRange,
}

/// Masks local models with the round's configuration.
#[derive(Clone, Debug)]
pub struct Masker {
    vect: Group,
    unit: Group,
}

impl Masker {
    /// A masker for `configs` (orders from the formula).
    pub fn new(configs: MaskConfigPair) -> Self {
        Self::with_groups(Group::new(configs.vect), Group::new(configs.unit))
    }

    /// A masker for explicit groups.
    pub fn with_groups(vect: Group, unit: Group) -> Self {
        Self { vect, unit }
    }

    /// Masks `weights` with `scalar` using the mask expanded from `seed`.
    ///
    /// The scalar is clamped to the unit bound; each `scalar · w` is clamped to `[−B, B]`,
    /// shifted and scaled to an integer and added to its mask. Non-finite weights are errors.
    pub fn mask(
        &self,
        seed: &MaskSeed,
        weights: Weights<'_>,
        scalar: &Scalar,
    ) -> Result<MaskObject, MaskError> {
        let mask = seed.derive_mask(weights.len(), &self.vect, &self.unit);
        let scalar = scalar.clamped(&self.unit.config().add_shift());
        let MaskObject { vect, unit } = mask;
        let mut vdata = vect.into_data();
        add_shifted_weights(&self.vect, &mut vdata, weights, &scalar)?;
        let mut udata = unit.into_data();
        // The unit holds floor((s' + B1) · E1): the clamped scalar shifted like a weight,
        // i.e. the weight 1 times the scalar s'.
        add_shifted_weights(&self.unit, &mut udata, Weights::F64(&[1.0]), &scalar)?;
        Ok(MaskObject {
            vect: MaskVect::from_group(&self.vect, vdata),
            unit: MaskUnit::from_group(&self.unit, udata),
        })
    }
}

/// `data[i] ← (data[i] + floor((clamp(s·w_i, −B, B) + B)·E)) mod q`.
fn add_shifted_weights(
    group: &Group,
    data: &mut Elements,
    weights: Weights<'_>,
    scalar: &Scalar,
) -> Result<(), MaskError> {
    let fixed = FixedShift::new(group.config()).zip(scalar.dyadic());
    let f32_fast = fixed.and_then(|(fs, s)| F32Shift::new(fs, s));
    match (fixed, f32_fast, weights, &group.width, data) {
        // The hot path: f32 weights, a u64 group (the default config).
        (_, Some(fast), Weights::F32(ws), Width::U64 { qm1 }, Elements::U64(v)) => {
            let qm1 = *qm1;
            for (index, (m, &w)) in v.iter_mut().zip(ws).enumerate() {
                let t = fast.shift(w).ok_or(ConversionError::NonFinite { index })?;
                *m = add_mod_u64(t as u64, *m, qm1);
            }
            Ok(())
        }
        (Some((fs, s)), _, _, Width::U64 { qm1 }, Elements::U64(v)) => {
            let qm1 = *qm1;
            for (i, m) in v.iter_mut().enumerate() {
                let t = match weights.dyadic(i)?.mul(s) {
                    Some(x) => fs.shift(x) as u64,
                    None => big_shift(group, weights, i, scalar)?
                        .to_u64()
                        .unwrap_or_default(),
                };
                *m = add_mod_u64(t, *m, qm1);
            }
            Ok(())
        }
        (Some((fs, s)), _, _, Width::U128 { qm1 }, Elements::U128(v)) => {
            let qm1 = *qm1;
            for (i, m) in v.iter_mut().enumerate() {
                let t = match weights.dyadic(i)?.mul(s) {
                    Some(x) => fs.shift(x),
                    None => big_shift(group, weights, i, scalar)?
                        .to_u128()
                        .unwrap_or_default(),
                };
                *m = add_mod_u128(t, *m, qm1);
            }
            Ok(())
        }
        (_, _, _, _, data) => {
            let b = BigRational::from_integer(BigInt::from(group.config().add_shift()));
            let e = BigInt::from(group.config().exp_shift());
            let q = group.order();
            let s = scalar.value();
            let n = data.len();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let t = shift_big(&(weights.rational(i)? * s), &b, &e);
                out.push((t + data.get_big(i)) % q);
            }
            *data = from_big_vec(group, out);
            Ok(())
        }
    }
}

fn big_shift(
    group: &Group,
    weights: Weights<'_>,
    i: usize,
    scalar: &Scalar,
) -> Result<BigUint, MaskError> {
    let b = BigRational::from_integer(BigInt::from(group.config().add_shift()));
    let e = BigInt::from(group.config().exp_shift());
    Ok(shift_big(&(weights.rational(i)? * scalar.value()), &b, &e))
}

/// Big integers below `group`'s order, in the group's representation.
pub(crate) fn from_big_vec(group: &Group, v: Vec<BigUint>) -> Elements {
    match group.width {
        Width::U64 { .. } => {
            Elements::U64(v.iter().map(|x| x.to_u64().unwrap_or_default()).collect())
        }
        Width::U128 { .. } => {
            Elements::U128(v.iter().map(|x| x.to_u128().unwrap_or_default()).collect())
        }
        Width::Big => Elements::Big(v),
    }
}

/// The running sum of masked objects (coordinator) or of masks (summer).
#[derive(Clone, Debug)]
pub struct Aggregation {
    vect: Group,
    unit: Group,
    model_length: usize,
    nb_models: u64,
    sum: Option<MaskObject>,
}

impl Aggregation {
    /// An empty aggregation for `configs` and models of `model_length` weights.
    pub fn new(configs: MaskConfigPair, model_length: usize) -> Self {
        Self::with_groups(
            Group::new(configs.vect),
            Group::new(configs.unit),
            model_length,
        )
    }

    /// An empty aggregation over explicit groups.
    pub fn with_groups(vect: Group, unit: Group, model_length: usize) -> Self {
        Self {
            vect,
            unit,
            model_length,
            nb_models: 0,
            sum: None,
        }
    }

    /// An aggregation resumed from a stored sum and count (e.g. after a restart).
    pub fn from_parts(
        configs: MaskConfigPair,
        model_length: usize,
        sum: MaskObject,
        nb_models: u64,
    ) -> Result<Self, AggregationError> {
        let mut agg = Self::new(configs, model_length);
        agg.validate_aggregation(&sum)?;
        agg.sum = Some(sum);
        agg.nb_models = nb_models;
        Ok(agg)
    }

    /// Number of aggregated objects.
    pub fn nb_models(&self) -> u64 {
        self.nb_models
    }

    /// The expected model length.
    pub fn model_length(&self) -> usize {
        self.model_length
    }

    /// The configs.
    pub fn configs(&self) -> MaskConfigPair {
        MaskConfigPair {
            vect: self.vect.config(),
            unit: self.unit.config(),
        }
    }

    /// The current sum (`None` before the first object).
    pub fn sum(&self) -> Option<&MaskObject> {
        self.sum.as_ref()
    }

    fn max_models(&self) -> u64 {
        self.vect
            .config()
            .max_nb_models()
            .min(self.unit.config().max_nb_models())
    }

    /// Checks that `obj` can be added (configs, length, count, element range).
    pub fn validate_aggregation(&self, obj: &MaskObject) -> Result<(), AggregationError> {
        if obj.vect.config() != self.vect.config() {
            return Err(AggregationError::ModelMismatch);
        }
        if obj.unit.config() != self.unit.config() {
            return Err(AggregationError::ScalarMismatch);
        }
        if obj.vect.len() != self.model_length {
            return Err(AggregationError::LengthMismatch {
                expected: self.model_length,
                actual: obj.vect.len(),
            });
        }
        if self.nb_models >= self.max_models() {
            return Err(AggregationError::TooManyModels(self.max_models()));
        }
        // Objects made or decoded by this crate for the standard group are known to be in
        // range; only others (explicit orders) need the scan.
        let vect_in_range = (self.vect.is_standard() && obj.vect.in_standard_range())
            || self.vect.all_below_order(obj.vect.data());
        let valid = self.vect.matches(obj.vect.data())
            && self.unit.matches(obj.unit.data())
            && obj.unit.data().len() == 1
            && vect_in_range
            && self.unit.all_below_order(obj.unit.data());
        if !valid {
            return Err(AggregationError::InvalidObject);
        }
        Ok(())
    }

    /// Validates and adds `obj`.
    pub fn aggregate(&mut self, obj: MaskObject) -> Result<(), AggregationError> {
        self.validate_aggregation(&obj)?;
        self.add_unchecked(obj);
        Ok(())
    }

    /// Validates and adds `obj` without taking ownership (copies only the first object).
    pub fn aggregate_ref(&mut self, obj: &MaskObject) -> Result<(), AggregationError> {
        self.validate_aggregation(obj)?;
        match &mut self.sum {
            None => self.sum = Some(obj.clone()),
            Some(sum) => {
                self.vect.add_assign(sum.vect.data_mut(), obj.vect.data());
                self.unit.add_assign(sum.unit.data_mut(), obj.unit.data());
            }
        }
        self.nb_models += 1;
        Ok(())
    }

    /// Adds an object already checked with [`Aggregation::validate_aggregation`].
    pub fn add_unchecked(&mut self, obj: MaskObject) {
        self.add_unchecked_par(obj, 1)
    }

    /// Like [`Aggregation::add_unchecked`], with the vector addition split across `threads`
    /// OS threads when the model is long (not on wasm).
    pub fn add_unchecked_par(&mut self, obj: MaskObject, threads: usize) {
        match &mut self.sum {
            None => self.sum = Some(obj),
            Some(sum) => {
                self.vect
                    .add_assign_par(sum.vect.data_mut(), obj.vect.data(), threads);
                self.unit.add_assign(sum.unit.data_mut(), obj.unit.data());
            }
        }
        self.nb_models += 1;
    }

    /// Adds a partial aggregate of the same configs and length (aggregation is associative).
    pub fn merge(&mut self, other: Aggregation) -> Result<(), AggregationError> {
        if other.configs() != self.configs() {
            return Err(AggregationError::ModelMismatch);
        }
        if other.model_length != self.model_length {
            return Err(AggregationError::LengthMismatch {
                expected: self.model_length,
                actual: other.model_length,
            });
        }
        let total = self.nb_models.saturating_add(other.nb_models);
        if total > self.max_models() {
            return Err(AggregationError::TooManyModels(self.max_models()));
        }
        if let Some(obj) = other.sum {
            match &mut self.sum {
                None => self.sum = Some(obj),
                Some(sum) => {
                    self.vect.add_assign(sum.vect.data_mut(), obj.vect.data());
                    self.unit.add_assign(sum.unit.data_mut(), obj.unit.data());
                }
            }
        }
        self.nb_models = total;
        Ok(())
    }

    /// Checks that `mask` can unmask this aggregate.
    pub fn validate_unmasking(&self, mask: &MaskObject) -> Result<(), UnmaskError> {
        if self.nb_models == 0 || self.sum.is_none() {
            return Err(UnmaskError::NoModels);
        }
        if self.nb_models > self.max_models() {
            return Err(UnmaskError::InvalidMask(AggregationError::TooManyModels(
                self.max_models(),
            )));
        }
        // Same checks as for aggregation, except the count.
        let probe = Aggregation {
            nb_models: 0,
            sum: None,
            ..self.clone_empty()
        };
        probe
            .validate_aggregation(mask)
            .map_err(UnmaskError::InvalidMask)
    }

    fn clone_empty(&self) -> Aggregation {
        Aggregation {
            vect: self.vect.clone(),
            unit: self.unit.clone(),
            model_length: self.model_length,
            nb_models: 0,
            sum: None,
        }
    }

    /// Removes the mask and returns the weighted average `Σ s_j w_j / Σ s_j` exactly.
    pub fn unmask(&self, mask: &MaskObject) -> Result<UnmaskedModel, UnmaskError> {
        self.validate_unmasking(mask)?;
        let sum = self.sum.as_ref().ok_or(UnmaskError::NoModels)?;
        let n = self.nb_models;

        // Σ s'_j · E1 = ((A_u − K_u) mod q1) − n · B1 · E1.
        let ucfg = self.unit.config();
        let u = self.unit.sub(sum.unit.data(), mask.unit.data()).get_big(0);
        let n_b1_e1 = ucfg.add_shift() * ucfg.exp_shift() * n;
        if u < n_b1_e1 {
            return Err(UnmaskError::OutOfRange);
        }
        let s_int = u - n_b1_e1;
        if s_int.is_zero() {
            return Err(UnmaskError::ZeroScalarSum);
        }

        let vcfg = self.vect.config();
        let nbe = vcfg.add_shift() * vcfg.exp_shift() * n;
        let numerators = match (
            &self.vect.width,
            sum.vect.data(),
            mask.vect.data(),
            nbe.to_i64(),
        ) {
            // q ≤ 2^63: X_i = ((A_i − K_i) mod q) − n·B·E fits an i64; one pass, no branches.
            (Width::U64 { qm1 }, Elements::U64(a), Elements::U64(k), Some(nbe))
                if *qm1 < (1 << 63) =>
            {
                Numerators::I64(
                    a.iter()
                        .zip(k)
                        .map(|(&a, &k)| sub_mod_u64(a, k, *qm1) as i64 - nbe)
                        .collect(),
                )
            }
            _ => {
                let diff = self.vect.sub(sum.vect.data(), mask.vect.data());
                match (&diff, nbe.to_u128()) {
                    (Elements::U64(v), Some(nbe)) => Numerators::Small(
                        v.iter()
                            .map(|&x| centered(x as u128, nbe))
                            .collect::<Option<Vec<_>>>()
                            .ok_or(UnmaskError::OutOfRange)?,
                    ),
                    (Elements::U128(v), Some(nbe)) => Numerators::Small(
                        v.iter()
                            .map(|&x| centered(x, nbe))
                            .collect::<Option<Vec<_>>>()
                            .ok_or(UnmaskError::OutOfRange)?,
                    ),
                    _ => Numerators::Big(
                        diff.to_big_vec()
                            .into_iter()
                            .map(|x| BigInt::from(x) - BigInt::from(nbe.clone()))
                            .collect(),
                    ),
                }
            }
        };
        // value_i = X_i / E / (S_int / E1) = X_i · E1 / (E · S_int).
        let num = ucfg.exp_shift();
        let den = vcfg.exp_shift() * s_int;
        let g = num.gcd(&den);
        Ok(UnmaskedModel {
            numerators,
            factor_num: num / &g,
            factor_den: den / &g,
        })
    }
}

/// `x − nbe` as an `i128`, if it fits.
#[inline]
fn centered(x: u128, nbe: u128) -> Option<i128> {
    if x >= nbe {
        i128::try_from(x - nbe).ok()
    } else {
        i128::try_from(nbe - x).ok().map(|v| -v)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Numerators {
    I64(Vec<i64>),
    Small(Vec<i128>),
    Big(Vec<BigInt>),
}

/// The unmasked global model, exact: weight `i` is `X_i · factor_num / factor_den`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmaskedModel {
    numerators: Numerators,
    factor_num: BigUint,
    factor_den: BigUint,
}

impl UnmaskedModel {
    /// A compact exact encoding (for persisting a global model):
    /// `kind u8 ‖ count u64 LE ‖ numerators ‖ factor_num ‖ factor_den`, where numerators are
    /// `i64` LE (kind 0), `i128` LE (kind 1) or length-prefixed signed big-endian bytes
    /// (kind 2), and the factors are length-prefixed big-endian magnitudes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put_big = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        };
        match &self.numerators {
            Numerators::I64(v) => {
                out.push(0);
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                out.reserve(v.len() * 8);
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            Numerators::Small(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            Numerators::Big(v) => {
                out.push(2);
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                for x in v {
                    put_big(&mut out, &x.to_signed_bytes_be());
                }
            }
        }
        put_big(&mut out, &self.factor_num.to_bytes_be());
        put_big(&mut out, &self.factor_den.to_bytes_be());
        out
    }

    /// Decodes [`UnmaskedModel::encode`]'s output; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<UnmaskedModel> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            if rest.len() < n {
                return None;
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Some(head)
        };
        let kind = take(1)?[0];
        let count = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        let numerators = match kind {
            0 => Numerators::I64(
                take(count.checked_mul(8)?)?
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
            ),
            1 => Numerators::Small(
                take(count.checked_mul(16)?)?
                    .chunks_exact(16)
                    .map(|c| i128::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
            ),
            2 => {
                let mut v = Vec::new();
                for _ in 0..count {
                    let n = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
                    v.push(BigInt::from_signed_bytes_be(take(n)?));
                }
                Numerators::Big(v)
            }
            _ => return None,
        };
        let n = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        let factor_num = BigUint::from_bytes_be(take(n)?);
        let n = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        let factor_den = BigUint::from_bytes_be(take(n)?);
        if factor_den.is_zero() || !rest.is_empty() {
            return None;
        }
        Some(UnmaskedModel {
            numerators,
            factor_num,
            factor_den,
        })
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        match &self.numerators {
            Numerators::I64(v) => v.len(),
            Numerators::Small(v) => v.len(),
            Numerators::Big(v) => v.len(),
        }
    }

    /// Whether the model is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn numerator(&self, i: usize) -> BigInt {
        match &self.numerators {
            Numerators::I64(v) => BigInt::from(v[i]),
            Numerators::Small(v) => BigInt::from(v[i]),
            Numerators::Big(v) => v[i].clone(),
        }
    }

    /// Weight `i` as an exact, reduced rational.
    pub fn exact(&self, i: usize) -> BigRational {
        let x = self.numerator(i);
        let neg = x.sign() == Sign::Minus;
        rational(
            neg,
            x.magnitude() * &self.factor_num,
            self.factor_den.clone(),
        )
        .unwrap_or_default()
    }

    /// The exact model (one reduced rational per weight), as served by the v1 `/model`.
    pub fn to_model(&self) -> Model {
        Model((0..self.len()).map(|i| self.exact(i)).collect())
    }

    /// Correctly rounded `f32` weights.
    pub fn to_f32(&self) -> Result<Vec<f32>, ConversionError> {
        let slow = |i: usize| {
            ratio_to_float(&self.exact(i), FloatKind::F32)
                .map(|v| v as f32)
                .map_err(|_| ConversionError::OutOfRange {
                    index: i,
                    target: "f32",
                })
        };
        let c = round_ratio(false, &self.factor_num, &self.factor_den, FloatKind::F64).ok();
        match (&self.numerators, c) {
            (Numerators::I64(v), Some(c)) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| fast_f32(x as f64, c).map_or_else(|| slow(i), Ok))
                .collect(),
            (Numerators::Small(v), Some(c)) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| fast_f32(x as f64, c).map_or_else(|| slow(i), Ok))
                .collect(),
            _ => (0..self.len()).map(slow).collect(),
        }
    }

    /// Correctly rounded `f64` weights.
    pub fn to_f64(&self) -> Result<Vec<f64>, ConversionError> {
        (0..self.len())
            .map(|i| {
                ratio_to_float(&self.exact(i), FloatKind::F64).map_err(|_| {
                    ConversionError::OutOfRange {
                        index: i,
                        target: "f64",
                    }
                })
            })
            .collect()
    }

    /// Weights truncated toward zero to `i32`.
    pub fn to_i32(&self) -> Result<Vec<i32>, ConversionError> {
        self.to_model().to_i32()
    }

    /// Weights truncated toward zero to `i64`.
    pub fn to_i64(&self) -> Result<Vec<i64>, ConversionError> {
        self.to_model().to_i64()
    }
}

/// `x · c` rounded to `f32`, if the `f64` approximation decides the rounding unambiguously.
///
/// `x` (the numerator as `f64`) and `c` are each within 2^-53 relative of the truth and so is
/// their product, so `y` is within 2^-51 relative (at most 4 units in its last place) of the
/// exact value. Rounding `y` to `f32` drops its low 29 mantissa bits; unless those bits are
/// within 8 units of the halfway pattern `2^28`, the exact value rounds the same way.
#[inline]
fn fast_f32(x: f64, c: f64) -> Option<f32> {
    if x == 0.0 {
        return Some(0.0);
    }
    let y = x * c;
    let bits = y.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    // Normal f32 range only; subnormal results and overflow take the exact path.
    if !(-126..=127).contains(&exp) {
        return None;
    }
    let dropped = bits & ((1 << 29) - 1);
    if dropped.abs_diff(1 << 28) <= 8 {
        return None;
    }
    let f = y as f32;
    f.is_finite().then_some(f)
}
