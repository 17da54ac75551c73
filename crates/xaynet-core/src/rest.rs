//! The bincode-1 bodies of the v1 REST API (SPEC §5.2), written by hand.
//!
//! bincode 1 with default options: integers fixed-width little-endian, `f64` as its 8 LE
//! bytes, byte strings, sequences and maps prefixed by a `u64` LE length, enums as a `u32` LE
//! variant index, structs as the concatenation of their fields. A `BigInt` is a sign (`i8`:
//! −1, 0, 1) followed by its magnitude as a `u64` count of `u32` LE digits, least significant
//! first.
//!
//! Writing by hand keeps the encodings pinned to the reference's bytes and lets every decoder
//! bound its allocations by the input: a length prefix is checked against the bytes that are
//! actually there before anything is reserved.

use std::collections::BTreeMap;

use num_bigint::{BigInt, BigUint, Sign};
use num_rational::BigRational;
use num_traits::Zero;

use crate::crypto::PublicEncryptKey;
use crate::eligibility::RoundSeed;
use crate::mask::{
    BoundType, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType, ENCRYPTED_MASK_SEED_LEN,
};
use crate::model::Model;
use crate::params::{RoundParameters, SumDict, UpdateSeedDict};

/// Errors decoding a bincode body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BincodeError {
    /// The body ends early.
    #[error("unexpected end of body while reading {0}")]
    Eof(&'static str),
    /// A byte string of the wrong length for its field.
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length {
        /// The field.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: u64,
    },
    /// A count larger than the remaining bytes could hold.
    #[error("{0} count exceeds the body size")]
    Count(&'static str),
    /// An invalid enum variant index.
    #[error("invalid variant index {index} for {what}")]
    Variant {
        /// The enum.
        what: &'static str,
        /// The index found.
        index: u32,
    },
    /// A malformed big integer (bad sign, zero with digits, leading zero digit).
    #[error("malformed big integer")]
    BigInt,
    /// A rational with a zero denominator.
    #[error("zero denominator")]
    ZeroDenominator,
    /// A map with the same key twice.
    #[error("duplicate key in {0}")]
    DuplicateKey(&'static str),
    /// Bytes left after the body.
    #[error("{0} unexpected bytes after the body")]
    TrailingBytes(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BincodeError> {
        if self.bytes.len() < n {
            return Err(BincodeError::Eof(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BincodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, BincodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, BincodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A length prefix for `min_item` bytes per item, checked against the remaining input.
    fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, BincodeError> {
        let n = self.u64(what)?;
        let max = (self.bytes.len() / min_item.max(1)) as u64;
        if n > max {
            return Err(BincodeError::Count(what));
        }
        Ok(n as usize)
    }

    /// A byte string that must be exactly `N` bytes.
    fn fixed_bytes<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BincodeError> {
        let len = self.u64(what)?;
        if len != N as u64 {
            return Err(BincodeError::Length {
                what,
                expected: N,
                actual: len,
            });
        }
        self.array(what)
    }

    fn finish(self) -> Result<(), BincodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(BincodeError::TrailingBytes(self.bytes.len()))
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_config(out: &mut Vec<u8>, c: MaskConfig) {
    for i in [
        c.group_type.variant_index(),
        c.data_type.variant_index(),
        c.bound_type.variant_index(),
        c.model_type.variant_index(),
    ] {
        out.extend_from_slice(&i.to_le_bytes());
    }
}

fn variant<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    f: fn(u32) -> Option<T>,
) -> Result<T, BincodeError> {
    let index = r.u32(what)?;
    f(index).ok_or(BincodeError::Variant { what, index })
}

fn read_config(r: &mut Reader<'_>) -> Result<MaskConfig, BincodeError> {
    Ok(MaskConfig {
        group_type: variant(r, "group type", GroupType::from_variant_index)?,
        data_type: variant(r, "data type", DataType::from_variant_index)?,
        bound_type: variant(r, "bound type", BoundType::from_variant_index)?,
        model_type: variant(r, "model type", ModelType::from_variant_index)?,
    })
}

impl RoundParameters {
    /// The body of `GET /params`.
    pub fn to_bincode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(136);
        put_bytes(&mut out, self.pk.as_bytes());
        out.extend_from_slice(&self.sum.to_le_bytes());
        out.extend_from_slice(&self.update.to_le_bytes());
        put_bytes(&mut out, self.seed.as_bytes());
        put_config(&mut out, self.mask_config.vect);
        put_config(&mut out, self.mask_config.unit);
        out.extend_from_slice(&self.model_length.to_le_bytes());
        out
    }

    /// Decodes the body of `GET /params`.
    pub fn from_bincode(bytes: &[u8]) -> Result<Self, BincodeError> {
        let mut r = Reader { bytes };
        let pk = PublicEncryptKey::from(r.fixed_bytes::<32>("pk")?);
        let sum = f64::from_le_bytes(r.array("sum")?);
        let update = f64::from_le_bytes(r.array("update")?);
        let seed = RoundSeed(r.fixed_bytes::<32>("seed")?);
        let vect = read_config(&mut r)?;
        let unit = read_config(&mut r)?;
        let model_length = r.u64("model_length")?;
        r.finish()?;
        Ok(Self {
            pk,
            sum,
            update,
            seed,
            mask_config: MaskConfigPair { vect, unit },
            model_length,
        })
    }
}

fn map_to_bincode<K: AsRef<[u8]>, V: AsRef<[u8]>>(map: &BTreeMap<K, V>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + map.len() * 128);
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (k, v) in map {
        put_bytes(&mut out, k.as_ref());
        put_bytes(&mut out, v.as_ref());
    }
    out
}

/// Decodes a map of fixed-size byte strings: `K` bytes keys, `V` bytes values, any order.
fn map_from_bincode<
    const K: usize,
    const V: usize,
    Key: Ord + From<[u8; K]>,
    Value: From<[u8; V]>,
>(
    bytes: &[u8],
    what: &'static str,
) -> Result<BTreeMap<Key, Value>, BincodeError> {
    let mut r = Reader { bytes };
    let n = r.count(what, 16 + K + V)?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let k = Key::from(r.fixed_bytes::<K>("key")?);
        let v = Value::from(r.fixed_bytes::<V>("value")?);
        if map.insert(k, v).is_some() {
            return Err(BincodeError::DuplicateKey(what));
        }
    }
    r.finish()?;
    Ok(map)
}

/// The body of `GET /sums`.
pub fn sum_dict_to_bincode(dict: &SumDict) -> Vec<u8> {
    map_to_bincode(dict)
}

/// Decodes the body of `GET /sums` (entries in any order).
pub fn sum_dict_from_bincode(bytes: &[u8]) -> Result<SumDict, BincodeError> {
    map_from_bincode::<32, 32, _, _>(bytes, "sum dict")
}

/// The body of `GET /seeds?pk=`.
pub fn update_seed_dict_to_bincode(dict: &UpdateSeedDict) -> Vec<u8> {
    map_to_bincode(dict)
}

/// Decodes the body of `GET /seeds?pk=` (entries in any order).
pub fn update_seed_dict_from_bincode(bytes: &[u8]) -> Result<UpdateSeedDict, BincodeError> {
    map_from_bincode::<32, ENCRYPTED_MASK_SEED_LEN, _, _>(bytes, "update seed dict")
}

fn put_bigint(out: &mut Vec<u8>, x: &BigInt) {
    let sign: i8 = match x.sign() {
        Sign::Minus => -1,
        Sign::NoSign => 0,
        Sign::Plus => 1,
    };
    out.push(sign as u8);
    let digits = x.magnitude().to_u32_digits();
    out.extend_from_slice(&(digits.len() as u64).to_le_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_le_bytes());
    }
}

fn read_bigint(r: &mut Reader<'_>) -> Result<BigInt, BincodeError> {
    let sign = r.take(1, "big integer sign")?[0] as i8;
    let n = r.count("big integer digits", 4)?;
    let raw = r.take(n * 4, "big integer digits")?;
    let digits: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if digits.last() == Some(&0) {
        return Err(BincodeError::BigInt);
    }
    let mag = BigUint::new(digits);
    match (sign, mag.is_zero()) {
        (0, true) => Ok(BigInt::zero()),
        (1, false) => Ok(BigInt::from_biguint(Sign::Plus, mag)),
        (-1, false) => Ok(BigInt::from_biguint(Sign::Minus, mag)),
        _ => Err(BincodeError::BigInt),
    }
}

impl Model {
    /// The body of `GET /model`: a sequence of `(numerator, denominator)` big integers.
    pub fn to_bincode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.0.len() * 26);
        out.extend_from_slice(&(self.0.len() as u64).to_le_bytes());
        for r in &self.0 {
            put_bigint(&mut out, r.numer());
            put_bigint(&mut out, r.denom());
        }
        out
    }

    /// Decodes the body of `GET /model`; rationals are reduced.
    pub fn from_bincode(bytes: &[u8]) -> Result<Model, BincodeError> {
        let mut r = Reader { bytes };
        // Smallest element: two zero-digit integers of 9 bytes each.
        let n = r.count("model", 18)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let num = read_bigint(&mut r)?;
            let den = read_bigint(&mut r)?;
            if den.is_zero() {
                return Err(BincodeError::ZeroDenominator);
            }
            out.push(BigRational::new(num, den));
        }
        r.finish()?;
        Ok(Model(out))
    }
}
