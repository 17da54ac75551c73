//! The protocol settings of the round engine and their validation (SPEC §1.3, §1.7).

use xaynet_core::crypto::PublicEncryptKey;
use xaynet_core::eligibility::RoundSeed;
use xaynet_core::mask::MaskConfigPair;
use xaynet_core::RoundParameters;

use super::Phase;

/// Count and time rules of one message phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseSettings {
    /// The phase cannot end with fewer accepted messages.
    pub min_count: u64,
    /// Messages beyond this many are discarded.
    pub max_count: u64,
    /// The phase lasts at least this long (ms).
    pub min_time_ms: u64,
    /// The phase fails if `min_count` is not reached within this long (ms).
    pub max_time_ms: u64,
}

/// The protocol settings of a coordinator.
#[derive(Clone, Debug, PartialEq)]
pub struct PetSettings {
    /// Probability of the sum task.
    pub sum_prob: f64,
    /// Probability of the update task among non-summers.
    pub update_prob: f64,
    /// Sum phase rules.
    pub sum: PhaseSettings,
    /// Update phase rules.
    pub update: PhaseSettings,
    /// Sum2 phase rules.
    pub sum2: PhaseSettings,
    /// Masking configuration (the same for the model and the scalar, as in the reference).
    pub mask: MaskConfigPair,
    /// Number of model weights.
    pub model_length: usize,
}

/// A broken settings rule: which key, and what it must satisfy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{key}`: {rule}")]
pub struct SettingsError {
    /// The offending key, e.g. `pet.update.count.min`.
    pub key: &'static str,
    /// The rule it breaks.
    pub rule: String,
}

fn err(key: &'static str, rule: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        rule: rule.into(),
    }
}

impl PetSettings {
    /// Rules of `phase`, if it is a message phase.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseSettings> {
        match phase {
            Phase::Sum => Some(&self.sum),
            Phase::Update => Some(&self.update),
            Phase::Sum2 => Some(&self.sum2),
            _ => None,
        }
    }

    /// The round parameters for a round key and seed.
    pub fn round_parameters(&self, pk: PublicEncryptKey, seed: RoundSeed) -> RoundParameters {
        RoundParameters {
            pk,
            sum: self.sum_prob,
            update: self.update_prob,
            seed,
            mask_config: self.mask,
            model_length: self.model_length as u64,
        }
    }

    /// Checks the reference's rules (SPEC §1.3, §1.7) plus a positive model length.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let (s, u) = (self.sum_prob, self.update_prob);
        if !(s > 0.0 && s < 1.0) {
            return Err(err("pet.sum.prob", format!("must be in (0, 1), is {s}")));
        }
        if !(u > 0.0 && u <= 1.0) {
            return Err(err("pet.update.prob", format!("must be in (0, 1], is {u}")));
        }
        let either = s + u - s * u;
        if !(either > 0.0 && either <= 1.0) {
            return Err(err(
                "pet.update.prob",
                "sum + update − sum·update must be in (0, 1]",
            ));
        }
        let phases: [(&PhaseSettings, [&'static str; 4], u64); 3] = [
            (
                &self.sum,
                [
                    "pet.sum.count.min",
                    "pet.sum.count.max",
                    "pet.sum.time.min",
                    "pet.sum.time.max",
                ],
                1,
            ),
            (
                &self.update,
                [
                    "pet.update.count.min",
                    "pet.update.count.max",
                    "pet.update.time.min",
                    "pet.update.time.max",
                ],
                3,
            ),
            (
                &self.sum2,
                [
                    "pet.sum2.count.min",
                    "pet.sum2.count.max",
                    "pet.sum2.time.min",
                    "pet.sum2.time.max",
                ],
                1,
            ),
        ];
        for (p, keys, least) in phases {
            if p.min_count < least {
                return Err(err(
                    keys[0],
                    format!("must be at least {least}, is {}", p.min_count),
                ));
            }
            if p.min_count > p.max_count {
                return Err(err(
                    keys[1],
                    format!(
                        "must be at least count.min ({}), is {}",
                        p.min_count, p.max_count
                    ),
                ));
            }
            if p.min_time_ms > p.max_time_ms {
                return Err(err(keys[3], "must be at least time.min"));
            }
        }
        if self.sum2.min_count > self.sum.max_count {
            return Err(err(
                "pet.sum2.count.min",
                "must not exceed pet.sum.count.max",
            ));
        }
        if self.sum2.max_count > self.sum.max_count {
            return Err(err(
                "pet.sum2.count.max",
                "must not exceed pet.sum.count.max",
            ));
        }
        let most = self
            .mask
            .vect
            .max_nb_models()
            .min(self.mask.unit.max_nb_models());
        if self.update.max_count > most {
            return Err(err(
                "pet.update.count.max",
                format!("must not exceed the mask config's model limit {most}"),
            ));
        }
        if self.model_length == 0 {
            return Err(err("model.length", "must be at least 1"));
        }
        if self.model_length > u32::MAX as usize {
            return Err(err(
                "model.length",
                "must fit in 32 bits (the wire format's count)",
            ));
        }
        Ok(())
    }
}
