#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `mask_config.json`, `masks.json` and `masking.json`.
mod common;
use common::*;
use num_bigint::BigUint;
use num_rational::BigRational;
use num_traits::{One, Signed};
use serde_json::Value;
use xaynet_core::mask::config::NUM_CONFIGS;
use xaynet_core::mask::prng::MaskRng;
use xaynet_core::mask::{
    Aggregation, BoundType, DataType, Group, GroupType, MaskConfig, MaskObject, MaskSeed, Masker,
};
use xaynet_core::model::{Model, Scalar, Weights};

/// The reference's (tabulated) order of a config, from `mask_config.json`.
fn reference_order(config: MaskConfig) -> BigUint {
    let v = load("mask_config.json");
    let row = arr(&v["configs"])
        .iter()
        .find(|r| MaskConfig::from_bytes(&hex(&r["wire_bytes"])).unwrap() == config)
        .unwrap()
        .clone();
    big(&row["order"])
}

/// The group the reference used: its order for `Bmax` rows (which ours deliberately does
/// not reproduce, see `bmax_orders_are_safe`), ours otherwise.
fn reference_group(config: MaskConfig) -> Group {
    if config.is_bounded() {
        Group::new(config)
    } else {
        Group::with_order(config, reference_order(config))
    }
}

#[test]
fn every_config_row() {
    let v = load("mask_config.json");
    let rows = arr(&v["configs"]);
    assert_eq!(rows.len(), NUM_CONFIGS);
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        let c = config(row);
        assert_eq!(
            c.to_string(),
            format!(
                "{}/{}/{}/{}",
                s(&row["group_type"]),
                s(&row["data_type"]),
                s(&row["bound_type"]),
                s(&row["model_type"])
            )
        );
        assert!(seen.insert(c));
        let bincode: Vec<u8> = [
            c.group_type.variant_index(),
            c.data_type.variant_index(),
            c.bound_type.variant_index(),
            c.model_type.variant_index(),
        ]
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
        assert_eq!(bincode, hex(&row["bincode_bytes"]));
        assert_eq!(
            BigRational::from_integer(c.add_shift().into()),
            rat(&row["add_shift"]),
            "{c}"
        );
        assert_eq!(c.exp_shift(), big(&row["exp_shift"]));
        assert_eq!(c.max_nb_models(), row["max_nb_models"].as_u64().unwrap());
        // Bytes per number agree on every row, Bmax included: the wire layout is identical.
        assert_eq!(
            c.bytes_per_number() as u64,
            row["bytes_per_number"].as_u64().unwrap(),
            "{c}"
        );
        if c.is_bounded() {
            assert_eq!(c.order(), &big(&row["order"]), "{c}");
            assert_eq!(c.order().bits(), row["order_bits"].as_u64().unwrap());
        }
    }
}

/// For `Bmax` the reference used rounded constants. Ours are computed from the formula, so
/// they are never below the minimal safe order `2·B·E·M + 1`; where the reference's constant is
/// below it, sums of extreme weights could wrap around in the reference and cannot in ours.
#[test]
fn bmax_orders_are_safe() {
    let v = load("mask_config.json");
    let mut unsafe_in_reference = Vec::new();
    let mut same = 0;
    let mut larger_in_reference = 0;
    for row in arr(&v["configs"]) {
        let c = config(row);
        if c.is_bounded() {
            continue;
        }
        let ours = c.order();
        let theirs = big(&row["order"]);
        let minimal = c.minimal_order();
        assert!(ours >= &minimal, "{c}");
        match c.group_type {
            GroupType::Integer => assert_eq!(ours, &minimal),
            GroupType::Prime => assert!(xaynet_core::mask::prime::is_prime(ours)),
            GroupType::Power2 => assert_eq!(ours.count_ones(), 1),
        }
        if ours == &theirs {
            same += 1;
        } else if theirs < minimal {
            unsafe_in_reference.push(c);
        } else {
            larger_in_reference += 1;
        }
    }
    // Power2 rows agree; F64, I32 and I64 Integer/Prime rows of the reference are below the
    // minimal order (f64::MAX·E·M rounded down; 2^32−1 / 2^64−1 instead of 2^32 / 2^64 as
    // the width of the shifted range); the F32 rows were rounded up (safe, just larger).
    assert_eq!(same, 16);
    assert_eq!(larger_in_reference, 8);
    assert_eq!(unsafe_in_reference.len(), 24);
    for c in unsafe_in_reference {
        assert_ne!(c.data_type, DataType::F32);
        assert_ne!(c.group_type, GroupType::Power2);
        assert_eq!(c.bound_type, BoundType::Bmax);
    }
}

#[test]
fn derived_masks() {
    let v = load("masks.json");
    let cases = arr(&v["cases"]);
    assert_eq!(cases.len(), 9);
    for case in cases {
        let (vc, uc) = (config(&case["vect_config"]), config(&case["unit_config"]));
        let (vg, ug) = (reference_group(vc), reference_group(uc));
        assert_eq!(vg.order(), &big(&case["vect_order"]));
        assert_eq!(ug.order(), &big(&case["unit_order"]));
        if !vc.is_bounded() {
            // Documented difference: our formula order is not the reference's rounded one.
            assert_ne!(vc.order(), &big(&case["vect_order"]));
        }
        let seed = MaskSeed::from_bytes(hex32(&case["mask_seed"]));
        let len = case["model_length"].as_u64().unwrap() as usize;
        let mask = seed.derive_mask(len, &vg, &ug);
        assert_eq!(
            mask.unit.data().get_big(0),
            big(&case["unit_mask"]),
            "{}",
            case["note"]
        );
        let expect: Vec<BigUint> = arr(&case["vect_mask"]).iter().map(big).collect();
        assert_eq!(mask.vect.data().to_big_vec(), expect);
        let bytes = hex(&case["mask_object_bytes"]);
        assert_eq!(mask.to_bytes(), bytes);
        let decoded = MaskObject::decode_with(&bytes, reference_group).unwrap();
        assert_eq!(decoded, (mask, bytes.len()));
    }
}

#[test]
fn raw_sampler() {
    let v = load("masks.json");
    let cases = arr(&v["generate_integer"]);
    assert!(cases.len() >= 8);
    for case in cases {
        let max = big(&case["max"]);
        let mut rng = MaskRng::from_seed(hex32(&case["prng_seed"]));
        for out in arr(&case["first_outputs"]) {
            assert_eq!(rng.generate_big(&max), big(out), "{}", case["note"]);
        }
        // The fixed-width sampler consumes the same words.
        if max.bits() > 0 && max <= (BigUint::one() << 128u32) {
            let qm1: u128 = (&max - 1u32).try_into().unwrap();
            let len = (max.bits() as usize).div_ceil(8);
            let mut rng = MaskRng::from_seed(hex32(&case["prng_seed"]));
            for out in arr(&case["first_outputs"]) {
                assert_eq!(BigUint::from(rng.generate_u128(len, qm1)), big(out));
            }
        }
    }
    let inter = &v["interleaved_draws"];
    let mut rng = MaskRng::from_seed(hex32(&inter["prng_seed"]));
    for d in arr(&inter["draws"]) {
        assert_eq!(rng.generate_big(&big(&d["max"])), big(&d["output"]));
    }
}

fn weights_of(model: &Value) -> (Vec<f32>, Vec<f64>) {
    let bits = arr(&model["bits"]);
    match s(&model["type"]) {
        "f32" => (
            bits.iter()
                .map(|b| f32::from_bits(u32::from_str_radix(s(b), 16).unwrap()))
                .collect(),
            vec![],
        ),
        "f64" => (
            vec![],
            bits.iter()
                .map(|b| f64::from_bits(u64::from_str_radix(s(b), 16).unwrap()))
                .collect(),
        ),
        t => panic!("type {t}"),
    }
}

fn mask_record(rec: &Value) -> MaskObject {
    let (vc, uc) = (config(&rec["vect_config"]), config(&rec["unit_config"]));
    let masker = Masker::with_groups(reference_group(vc), reference_group(uc));
    let (f32s, f64s) = weights_of(&rec["model"]);
    let weights = if f64s.is_empty() {
        Weights::F32(&f32s)
    } else {
        Weights::F64(&f64s)
    };
    // The exact values of the weights are what the vectors say.
    let exact: Vec<BigRational> = arr(&rec["model"]["exact"]).iter().map(rat).collect();
    assert_eq!(Model::from_weights(weights).unwrap().0, exact);
    let scalar = Scalar::from_f64(rec["scalar_f64"].as_f64().unwrap()).unwrap();
    assert_eq!(scalar.value(), &rat(&rec["scalar_exact"]));
    let seed = MaskSeed::from_bytes(hex32(&rec["mask_seed"]));
    let obj = masker.mask(&seed, weights, &scalar).unwrap();
    let masked: Vec<BigUint> = arr(&rec["masked_vect"]).iter().map(big).collect();
    assert_eq!(obj.vect.data().to_big_vec(), masked);
    assert_eq!(obj.unit.data().get_big(0), big(&rec["masked_unit"]));
    assert_eq!(obj.to_bytes(), hex(&rec["masked_object_bytes"]));
    // The intermediate values: masked − mask = the shifted weights and the shifted scalar.
    let q = reference_group(vc).order().clone();
    let uq = reference_group(uc).order().clone();
    let unshift = |m: &BigUint, r: &BigUint, q: &BigUint| (m + q - r) % q;
    let vmask: Vec<BigUint> = arr(&rec["vect_mask"]).iter().map(big).collect();
    let shifted: Vec<BigUint> = arr(&rec["shifted_weights"]).iter().map(big).collect();
    for ((m, r), t) in masked.iter().zip(&vmask).zip(&shifted) {
        assert_eq!(&unshift(m, r, &q), t);
    }
    assert_eq!(
        unshift(&big(&rec["masked_unit"]), &big(&rec["unit_mask"]), &uq),
        big(&rec["shifted_scalar"])
    );
    obj
}

#[test]
fn masking_cases() {
    let v = load("masking.json");
    let cases = arr(&v["cases"]);
    assert_eq!(cases.len(), 7);
    for case in cases {
        mask_record(case);
    }
}

fn dist(x: f64, exact: &BigRational) -> BigRational {
    (BigRational::from_float(x).unwrap() - exact).abs()
}

/// Asserts that `x` is the float nearest to `exact` (ties aside, which never occur here).
fn assert_nearest_f64(x: f64, exact: &BigRational) {
    let d = |y: f64| (BigRational::from_float(y).unwrap() - exact).abs();
    assert!(
        d(x) <= d(x.next_up()) && d(x) <= d(x.next_down()),
        "{x} for {exact}"
    );
}
fn assert_nearest_f32(x: f32, exact: &BigRational) {
    let d = |y: f32| (BigRational::from_float(y).unwrap() - exact).abs();
    assert!(
        d(x) <= d(x.next_up()) && d(x) <= d(x.next_down()),
        "{x} for {exact}"
    );
}

#[test]
fn aggregation_and_unmasking() {
    let v = load("masking.json");
    let aggs = arr(&v["aggregations"]);
    assert_eq!(aggs.len(), 2);
    for a in aggs {
        let (vc, uc) = (config(&a["vect_config"]), config(&a["unit_config"]));
        let len = a["model_length"].as_u64().unwrap() as usize;
        let mut coordinator =
            Aggregation::with_groups(reference_group(vc), reference_group(uc), len);
        let mut summer = Aggregation::with_groups(reference_group(vc), reference_group(uc), len);
        for u in arr(&a["updaters"]) {
            coordinator.aggregate(mask_record(u)).unwrap();
            let seed = MaskSeed::from_bytes(hex32(&u["mask_seed"]));
            summer
                .aggregate(seed.derive_mask(len, &reference_group(vc), &reference_group(uc)))
                .unwrap();
        }
        assert_eq!(coordinator.nb_models(), a["nb_models"].as_u64().unwrap());
        assert_eq!(
            coordinator.sum().unwrap().to_bytes(),
            hex(&a["aggregated_masked_object"]["bytes"])
        );
        let mask = summer.sum().unwrap().clone();
        assert_eq!(mask.to_bytes(), hex(&a["aggregated_mask"]["bytes"]));

        let q = reference_group(vc).order().clone();
        let unmasked: Vec<BigUint> = coordinator
            .sum()
            .unwrap()
            .vect
            .data()
            .to_big_vec()
            .iter()
            .zip(mask.vect.data().to_big_vec())
            .map(|(a, k)| (a + &q - k) % &q)
            .collect();
        assert_eq!(
            unmasked,
            arr(&a["unmasked_vect_integers"])
                .iter()
                .map(big)
                .collect::<Vec<_>>()
        );
        let global = coordinator.unmask(&mask).unwrap();
        let exact: Vec<BigRational> = arr(&a["global_model_exact"]).iter().map(rat).collect();
        assert_eq!(global.to_model().0, exact);
        // Our float conversion is correctly rounded; it equals the reference's output wherever
        // the reference's (not correctly rounded) conversion happens to be right.
        let f32s = global.to_f32().unwrap();
        let f64s = global.to_f64().unwrap();
        for (i, e) in exact.iter().enumerate() {
            assert_nearest_f32(f32s[i], e);
            assert_nearest_f64(f64s[i], e);
        }
        // Where the two differ, the reference's value is strictly farther from the exact one
        // (it rounds numerator and denominator separately before dividing).
        let ref_f32: Vec<f32> = arr(&a["global_model_f32_bits"])
            .iter()
            .map(|b| f32::from_bits(u32::from_str_radix(s(b), 16).unwrap()))
            .collect();
        let ref_f64: Vec<f64> = arr(&a["global_model_f64_bits"])
            .iter()
            .map(|b| f64::from_bits(u64::from_str_radix(s(b), 16).unwrap()))
            .collect();
        let mut differ = 0;
        for (i, e) in exact.iter().enumerate() {
            if f32s[i] != ref_f32[i] {
                differ += 1;
                assert!(dist(f32s[i] as f64, e) < dist(ref_f32[i] as f64, e), "{i}");
            }
            if f64s[i] != ref_f64[i] {
                differ += 1;
                assert!(dist(f64s[i], e) < dist(ref_f64[i], e), "{i}");
            }
        }
        assert!(
            differ <= exact.len(),
            "most conversions agree with the reference"
        );
        // Unmasking with a wrong mask is detected or gives a different model, never a panic.
        let other = MaskSeed::from_bytes([9; 32]).derive_mask(
            len,
            &reference_group(vc),
            &reference_group(uc),
        );
        if let Ok(m) = coordinator.unmask(&other) {
            assert_ne!(m.to_model().0, exact);
        }
    }
}

#[test]
fn float_conversion_cases() {
    let v = load("masking.json");
    let cases = arr(&v["float_conversion_cases"]);
    assert!(cases.len() >= 15);
    for case in cases {
        let r = rat(&case["rational"]);
        let model = Model(vec![r.clone()]);
        for (key, ours) in [
            ("to_f32", model.to_f32().map(|v| v[0] as f64)),
            ("to_f64", model.to_f64().map(|v| v[0])),
        ] {
            let expect = &case[key];
            match (s(&expect["result"]), &ours) {
                ("error_out_of_range", Err(_)) => {}
                ("error_out_of_range", Ok(x)) => panic!("{key} {r}: expected range error, got {x}"),
                (_, Err(e)) => panic!("{key} {r}: {e}"),
                ("value" | "does_not_terminate", Ok(x)) => {
                    // Ours is always the correctly rounded value; the reference's differs
                    // only where its note says so (truncated or separately converted parts).
                    if key == "to_f32" {
                        assert_nearest_f32(*x as f32, &r);
                    } else {
                        assert_nearest_f64(*x, &r);
                    }
                    if s(&expect["result"]) == "value" {
                        let bits = s(&expect["bits"]);
                        let theirs = if key == "to_f32" {
                            f32::from_bits(u32::from_str_radix(bits, 16).unwrap()) as f64
                        } else {
                            f64::from_bits(u64::from_str_radix(bits, 16).unwrap())
                        };
                        if theirs != *x {
                            assert!(dist(*x, &r) < dist(theirs, &r), "{key} {r}");
                        }
                    }
                }
                (other, _) => panic!("unknown result {other}"),
            }
        }
    }
}
