//! Round parameters and the dictionaries the coordinator publishes (SPEC §1.2, §1.6).

use std::collections::BTreeMap;

use crate::crypto::{PublicEncryptKey, PublicSigningKey};
use crate::eligibility::RoundSeed;
use crate::mask::{EncryptedMaskSeed, MaskConfigPair};

/// The parameters of one round, published at `GET /params`. Participants detect a new round
/// by any change of this struct.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundParameters {
    /// The coordinator's X25519 key for this round.
    pub pk: PublicEncryptKey,
    /// Probability of the sum task.
    pub sum: f64,
    /// Probability of the update task (for non-summers).
    pub update: f64,
    /// The round seed.
    pub seed: RoundSeed,
    /// The masking configuration of the model and the scalar.
    pub mask_config: MaskConfigPair,
    /// Number of weights of the model.
    pub model_length: u64,
}

/// Summer's Ed25519 key → its ephemeral X25519 key (`GET /sums`).
pub type SumDict = BTreeMap<PublicSigningKey, PublicEncryptKey>;

/// Updater's key → its mask seed sealed to one summer (`GET /seeds?pk=`).
pub type UpdateSeedDict = BTreeMap<PublicSigningKey, EncryptedMaskSeed>;

/// Summer's key → that summer's update seed dictionary (the coordinator's global view).
pub type SeedDict = BTreeMap<PublicSigningKey, UpdateSeedDict>;
