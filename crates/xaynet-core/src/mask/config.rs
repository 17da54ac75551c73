//! Mask configurations (SPEC §3.1–3.2): which group the masked numbers live in, the data type
//! of the weights, their bound and the maximum number of models in one aggregate.
//!
//! The group order `q` is **computed** from the formula `2·B·E·M + 1` (then the next prime or
//! the next power of two), never taken from a table. For every bounded configuration this is
//! exactly the reference's order; for the `Bmax` configurations the reference used rounded
//! constants, some of them too small (see `tests/mask_config.rs`).

use std::sync::OnceLock;

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive};

use super::prime::next_prime;

/// Errors decoding a mask configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A byte that names no variant of the field.
    #[error("invalid {field} byte {value:#04x} in mask config")]
    InvalidByte {
        /// Which of the four fields.
        field: &'static str,
        /// The offending byte.
        value: u8,
    },
    /// Fewer than the 4 bytes a config needs.
    #[error("mask config needs 4 bytes, got {0}")]
    Truncated(usize),
}

macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, [$($(#[$vdoc:meta])* $variant:ident = $byte:literal),+]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// All variants in declaration (= bincode variant index) order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The byte used inside PET messages.
            pub fn to_byte(self) -> u8 {
                match self { $($name::$variant => $byte),+ }
            }

            /// Decodes the byte used inside PET messages.
            pub fn from_byte(byte: u8) -> Result<Self, ConfigError> {
                match byte {
                    $($byte => Ok($name::$variant),)+
                    value => Err(ConfigError::InvalidByte { field: $field, value }),
                }
            }

            /// The serde/bincode variant index (used by the REST API's bincode bodies).
            pub fn variant_index(self) -> u32 {
                self as u32
            }

            /// Decodes a serde/bincode variant index.
            pub fn from_variant_index(index: u32) -> Option<Self> {
                Self::ALL.get(index as usize).copied()
            }

            /// The variant's name as in the reference's settings (`"Prime"`, `"F32"`, …).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }

            /// Parses a variant name (case-sensitive, as in the reference's settings).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($variant) => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

config_enum!(
    /// How the group order is chosen from the minimal order `2·B·E·M + 1`.
    GroupType, "group type", [
    /// The minimal order itself.
    Integer = 0,
    /// The smallest prime not below it.
    Prime = 1,
    /// The smallest power of two not below it.
    Power2 = 2]
);
config_enum!(
    /// Primitive type of the model weights.
    DataType, "data type", [
    /// 32-bit floats.
    F32 = 0,
    /// 64-bit floats.
    F64 = 1,
    /// 32-bit signed integers.
    I32 = 2,
    /// 64-bit signed integers.
    I64 = 3]
);
config_enum!(
    /// Absolute bound `B` on the (scaled) weights.
    BoundType, "bound type", [
    /// `B = 1`.
    B0 = 0,
    /// `B = 100`.
    B2 = 2,
    /// `B = 10 000`.
    B4 = 4,
    /// `B = 1 000 000`.
    B6 = 6,
    /// `B` = the data type's maximum.
    Bmax = 255]
);
config_enum!(
    /// Maximum number of models `M = 10^k` in one aggregate.
    ModelType, "model type", [
    /// 1 000 models.
    M3 = 3,
    /// 10^6 models.
    M6 = 6,
    /// 10^9 models.
    M9 = 9,
    /// 10^12 models.
    M12 = 12]
);

/// A masking configuration: `[group, data, bound, model]` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MaskConfig {
    /// How the group order is chosen.
    pub group_type: GroupType,
    /// Type of the weights.
    pub data_type: DataType,
    /// Bound on the weights.
    pub bound_type: BoundType,
    /// Maximum number of aggregated models.
    pub model_type: ModelType,
}

/// Number of distinct mask configurations (3 × 4 × 5 × 4).
pub const NUM_CONFIGS: usize = 240;

/// Length of an encoded [`MaskConfig`].
pub const MASK_CONFIG_LEN: usize = 4;

impl Default for MaskConfig {
    /// The reference's deployed default: Prime / F32 / B0 / M3.
    fn default() -> Self {
        Self {
            group_type: GroupType::Prime,
            data_type: DataType::F32,
            bound_type: BoundType::B0,
            model_type: ModelType::M3,
        }
    }
}

impl std::fmt::Display for MaskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.group_type.name(),
            self.data_type.name(),
            self.bound_type.name(),
            self.model_type.name()
        )
    }
}

impl MaskConfig {
    /// All 240 configurations.
    pub fn all() -> impl Iterator<Item = MaskConfig> {
        GroupType::ALL.iter().flat_map(|&group_type| {
            DataType::ALL.iter().flat_map(move |&data_type| {
                BoundType::ALL.iter().flat_map(move |&bound_type| {
                    ModelType::ALL.iter().map(move |&model_type| MaskConfig {
                        group_type,
                        data_type,
                        bound_type,
                        model_type,
                    })
                })
            })
        })
    }

    /// The 4-byte wire encoding `[group, data, bound, model]`.
    pub fn to_bytes(self) -> [u8; MASK_CONFIG_LEN] {
        [
            self.group_type.to_byte(),
            self.data_type.to_byte(),
            self.bound_type.to_byte(),
            self.model_type.to_byte(),
        ]
    }

    /// Decodes the first 4 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let b: &[u8; 4] = bytes
            .get(..MASK_CONFIG_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(ConfigError::Truncated(bytes.len()))?;
        Ok(Self {
            group_type: GroupType::from_byte(b[0])?,
            data_type: DataType::from_byte(b[1])?,
            bound_type: BoundType::from_byte(b[2])?,
            model_type: ModelType::from_byte(b[3])?,
        })
    }

    /// Position of the config in [`MaskConfig::all`] (0..240).
    pub fn index(self) -> usize {
        (((self.group_type as usize * 4) + self.data_type as usize) * 5 + self.bound_type as usize)
            * 4
            + self.model_type as usize
    }

    /// Whether the bound is one of the finite decimal bounds (`B0` … `B6`).
    pub fn is_bounded(self) -> bool {
        self.bound_type != BoundType::Bmax
    }

    /// The bound `B` (`add_shift`). Always an integer: for `Bmax` it is the exact value of
    /// `f32::MAX` / `f64::MAX`, or `2^31` / `2^63` for the integer types.
    pub fn add_shift(self) -> BigUint {
        match self.bound_type {
            BoundType::B0 => BigUint::one(),
            BoundType::B2 => BigUint::from(100u32),
            BoundType::B4 => BigUint::from(10_000u32),
            BoundType::B6 => BigUint::from(1_000_000u32),
            BoundType::Bmax => match self.data_type {
                // f32::MAX = (2^24 − 1) · 2^104, f64::MAX = (2^53 − 1) · 2^971.
                DataType::F32 => BigUint::from((1u64 << 24) - 1) << 104u32,
                DataType::F64 => BigUint::from((1u64 << 53) - 1) << 971u32,
                DataType::I32 => BigUint::one() << 31u32,
                DataType::I64 => BigUint::one() << 63u32,
            },
        }
    }

    /// The bound as a small integer, for the bounded configurations.
    pub fn add_shift_u64(self) -> Option<u64> {
        self.add_shift().to_u64()
    }

    /// The decimal exponent `k` of the fixed-point scale `E = 10^k` (`exp_shift`).
    pub fn exp_shift_exponent(self) -> u32 {
        match (self.data_type, self.bound_type) {
            (DataType::F32, BoundType::Bmax) => 45,
            (DataType::F32, _) => 10,
            (DataType::F64, BoundType::Bmax) => 324,
            (DataType::F64, _) => 20,
            (DataType::I32 | DataType::I64, _) => 10,
        }
    }

    /// The fixed-point scale `E` (`exp_shift`).
    pub fn exp_shift(self) -> BigUint {
        BigUint::from(10u32).pow(self.exp_shift_exponent())
    }

    /// The maximum number of models `M` in one aggregate.
    pub fn max_nb_models(self) -> u64 {
        10u64.pow(self.model_type.to_byte() as u32)
    }

    /// The minimal group order `2·B·E·M + 1` (the `Integer` order).
    pub fn minimal_order(self) -> BigUint {
        ((self.add_shift() * self.exp_shift() * self.max_nb_models()) << 1u32) + 1u32
    }

    /// The group order `q`, computed from the formula and memoised per configuration.
    pub fn order(self) -> &'static BigUint {
        static ORDERS: OnceLock<Vec<OnceLock<BigUint>>> = OnceLock::new();
        let slots = ORDERS.get_or_init(|| (0..NUM_CONFIGS).map(|_| OnceLock::new()).collect());
        // `index()` is always < NUM_CONFIGS, so the slot exists.
        slots[self.index()].get_or_init(|| self.compute_order())
    }

    fn compute_order(self) -> BigUint {
        let minimal = self.minimal_order();
        match self.group_type {
            GroupType::Integer => minimal,
            GroupType::Prime => next_prime(&minimal),
            GroupType::Power2 => BigUint::one() << (&minimal - 1u32).bits(),
        }
    }

    /// Bytes per masked number on the wire: `ceil(bitlen(q − 1) / 8)`.
    pub fn bytes_per_number(self) -> usize {
        bytes_per_number(self.order())
    }
}

/// Bytes per masked number for group order `order`: `ceil(bitlen(order − 1) / 8)`.
pub fn bytes_per_number(order: &BigUint) -> usize {
    let max = order - 1u32;
    (max.bits() as usize).div_ceil(8).max(1)
}

/// The configurations for the model vector and for the scalar.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct MaskConfigPair {
    /// Config of the model vector.
    pub vect: MaskConfig,
    /// Config of the scalar (aggregation weight).
    pub unit: MaskConfig,
}

impl From<MaskConfig> for MaskConfigPair {
    fn from(config: MaskConfig) -> Self {
        Self {
            vect: config,
            unit: config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_roundtrip_for_all() {
        let all: Vec<_> = MaskConfig::all().collect();
        assert_eq!(all.len(), NUM_CONFIGS);
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(MaskConfig::from_bytes(&c.to_bytes()).unwrap(), *c);
        }
        assert_eq!(
            MaskConfig::from_bytes(&[3, 0, 0, 3]),
            Err(ConfigError::InvalidByte {
                field: "group type",
                value: 3
            })
        );
        assert_eq!(
            MaskConfig::from_bytes(&[1, 0]),
            Err(ConfigError::Truncated(2))
        );
    }

    #[test]
    fn default_order() {
        let c = MaskConfig::default();
        assert_eq!(c.order(), &BigUint::from(20_000_000_000_021u64));
        assert_eq!(c.bytes_per_number(), 6);
    }
}
