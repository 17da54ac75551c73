//! # xaynet-core
//!
//! The PET protocol of Xaynet, byte-compatible with Xaynet 0.11: everything the coordinator
//! and the participants share, with no IO, clocks or global state.
//!
//! Where to start reading:
//! * [`crypto`]: Ed25519 identities and signatures, X25519 sealed boxes, SHA-256.
//! * [`eligibility`]: who sums and who updates in a round; the round-seed chain.
//! * [`mask`]: mask configurations, the mask PRNG, masking, aggregation and unmasking.
//! * [`model`]: models and scalars, exact conversions from and to primitive types.
//! * [`message`]: the signed and sealed PET messages and their chunking.
//! * [`rest`]: the bincode bodies of the v1 REST API (`/params`, `/sums`, `/seeds`, `/model`).
//!
//! Every decoder in this crate returns a typed error on malformed input, never panics and
//! never allocates more than its input justifies.

pub mod crypto;
pub mod eligibility;
pub mod mask;
pub mod message;
pub mod model;
pub mod params;
pub mod rest;

pub use crypto::{
    EncryptKeyPair, PublicEncryptKey, PublicSigningKey, SecretEncryptKey, SecretSigningKey,
    Signature, SigningKeyPair,
};
pub use eligibility::{RoundSeed, Task, TaskSignatures};
pub use model::{Model, Scalar, Weights};
pub use params::{RoundParameters, SeedDict, SumDict, UpdateSeedDict};
