//! A straightforward big-integer implementation of masking, aggregation and unmasking, one
//! `BigUint`/rational per element, as the reference design computes them.
//!
//! It is not used by the protocol paths. It exists as an independent cross-check of the
//! fixed-width code (property tests compare the two on every configuration) and as the
//! yardstick in the benchmarks.

use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;

use super::config::MaskConfig;
use super::fixed::shift_big;
use super::prng::MaskRng;
use crate::model::{ConversionError, Scalar, Weights};

/// Masks `weights` element by element with rationals and big integers; returns the masked
/// vector and the masked scalar.
pub fn mask(
    vect: MaskConfig,
    unit: MaskConfig,
    seed: [u8; 32],
    weights: Weights<'_>,
    scalar: &Scalar,
) -> Result<(Vec<BigUint>, BigUint), ConversionError> {
    let mut rng = MaskRng::from_seed(seed);
    let (vq, uq) = (vect.order(), unit.order());
    let unit_mask = rng.generate_big(uq);
    let vect_mask: Vec<BigUint> = (0..weights.len()).map(|_| rng.generate_big(vq)).collect();

    let ub = BigRational::from_integer(BigInt::from(unit.add_shift()));
    let s = if scalar.value() > &ub {
        ub.clone()
    } else {
        scalar.value().clone()
    };
    let vb = BigRational::from_integer(BigInt::from(vect.add_shift()));
    let ve = BigInt::from(vect.exp_shift());
    let mut masked = Vec::with_capacity(weights.len());
    for (i, r) in vect_mask.into_iter().enumerate() {
        let w = weights.rational(i)?;
        masked.push((shift_big(&(w * &s), &vb, &ve) + r) % vq);
    }
    let t1 = shift_big(&s, &ub, &BigInt::from(unit.exp_shift()));
    Ok((masked, (t1 + unit_mask) % uq))
}

/// `(acc + obj) mod q` element by element, one new big integer per element, as the reference
/// aggregated.
pub fn aggregate(acc: &[BigUint], obj: &[BigUint], q: &BigUint) -> Vec<BigUint> {
    acc.iter().zip(obj).map(|(a, b)| (a + b) % q).collect()
}

/// The weighted average from an aggregate and its mask, with rationals; `None` if the scalar
/// sum is not positive.
#[allow(clippy::too_many_arguments)]
pub fn unmask(
    vect: MaskConfig,
    unit: MaskConfig,
    agg: &[BigUint],
    agg_unit: &BigUint,
    mask: &[BigUint],
    mask_unit: &BigUint,
    nb_models: u64,
) -> Option<Vec<BigRational>> {
    let sub = |a: &BigUint, b: &BigUint, q: &BigUint| -> BigInt {
        BigInt::from(if a >= b { a - b } else { a + q - b })
    };
    let n = BigInt::from(nb_models);
    let ue = BigInt::from(unit.exp_shift());
    let s = BigRational::new(sub(agg_unit, mask_unit, unit.order()), ue)
        - BigRational::from_integer(n.clone() * BigInt::from(unit.add_shift()));
    if s <= BigRational::from_integer(BigInt::from(0u32)) {
        return None;
    }
    let ve = BigInt::from(vect.exp_shift());
    let nb = BigRational::from_integer(n * BigInt::from(vect.add_shift()));
    Some(
        agg.iter()
            .zip(mask)
            .map(|(a, k)| (BigRational::new(sub(a, k, vect.order()), ve.clone()) - &nb) / &s)
            .collect(),
    )
}
