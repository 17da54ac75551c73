#![doc = include_str!("../README.md")]

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
