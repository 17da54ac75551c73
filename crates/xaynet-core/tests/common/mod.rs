#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Shared helpers for the test-vector tests: loading `testvectors/*.json` and decoding hex,
//! decimal big integers, rationals and mask configs.
#![allow(dead_code)]

use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use serde_json::Value;
use xaynet_core::mask::MaskConfig;

/// Loads `testvectors/<name>` from the workspace root.
pub fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

pub fn hex(v: &Value) -> Vec<u8> {
    hex::decode(s(v)).unwrap()
}

pub fn hex32(v: &Value) -> [u8; 32] {
    hex(v).try_into().unwrap()
}

pub fn big(v: &Value) -> BigUint {
    s(v).parse().unwrap()
}

pub fn rat(v: &Value) -> BigRational {
    let text = s(v);
    let (n, d) = text.split_once('/').unwrap_or((text, "1"));
    BigRational::new(n.parse::<BigInt>().unwrap(), d.parse::<BigInt>().unwrap())
}

pub fn config(v: &Value) -> MaskConfig {
    MaskConfig::from_bytes(&hex(&v["wire_bytes"])).unwrap()
}

/// A config written as "Prime/F32/B0/M3".
pub fn config_name(v: &Value) -> MaskConfig {
    use xaynet_core::mask::{BoundType, DataType, GroupType, ModelType};
    let parts: Vec<&str> = s(v).split('/').collect();
    MaskConfig {
        group_type: GroupType::from_name(parts[0]).unwrap(),
        data_type: DataType::from_name(parts[1]).unwrap(),
        bound_type: BoundType::from_name(parts[2]).unwrap(),
        model_type: ModelType::from_name(parts[3]).unwrap(),
    }
}

pub fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}
