//! Masking (SPEC §3): configurations, group arithmetic, the mask PRNG, masked objects,
//! masking / aggregation / unmasking.
//!
//! Start with [`Masker`] (updater), [`MaskSeed::derive_mask`] (summer) and [`Aggregation`]
//! (coordinator and summer).

pub mod config;
pub(crate) mod fixed;
pub mod group;
pub mod masking;
pub mod object;
pub mod prime;
pub mod prng;
pub mod reference;
pub mod seed;

pub use config::{
    BoundType, ConfigError, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType,
};
pub use group::{Elements, Group};
pub use masking::{Aggregation, AggregationError, MaskError, Masker, UnmaskError, UnmaskedModel};
pub use object::{MaskObject, MaskObjectError, MaskUnit, MaskVect};
pub use seed::{EncryptedMaskSeed, MaskSeed, ENCRYPTED_MASK_SEED_LEN};
