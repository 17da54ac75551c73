//! Task selection (SPEC §1.3) and the coordinator's round-seed derivation (§1.9).
//!
//! A participant's role in a round is a public, deterministic function of its Ed25519 key,
//! the round seed and the two selection probabilities: it signs `seed ‖ "sum"` and
//! `seed ‖ "update"`, hashes each signature with SHA-256 and compares the digest, read as a
//! little-endian 256-bit integer `H`, with the probability: eligible iff
//! `H / (2^256 − 1) ≤ p`, compared **exactly** (the `f64` is taken as its exact binary value).

use num_bigint::BigUint;
use num_traits::One;

use crate::crypto::{
    sha256, signing_key_from_encrypt_secret, PublicSigningKey, SecretEncryptKey, SecretSigningKey,
    Signature, SEED_LEN,
};
use crate::mask::fixed::Dyadic;

/// The suffix signed for the sum task.
pub const SUM_SUFFIX: &[u8] = b"sum";
/// The suffix signed for the update task.
pub const UPDATE_SUFFIX: &[u8] = b"update";

/// A round seed (32 bytes, published in the round parameters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RoundSeed(pub [u8; SEED_LEN]);

impl RoundSeed {
    /// The seed the very first round derives from (32 zero bytes).
    pub const ZERO: RoundSeed = RoundSeed([0; SEED_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }

    /// The message a participant signs for a task: `seed ‖ suffix`.
    pub fn task_message(&self, suffix: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(SEED_LEN + suffix.len());
        m.extend_from_slice(&self.0);
        m.extend_from_slice(suffix);
        m
    }

    /// The next round's seed (SPEC §1.9): the new round's X25519 secret is used as an Ed25519
    /// seed, which signs `self ‖ f64_le(sum) ‖ f64_le(update)`; the seed is SHA-256 of that
    /// signature.
    pub fn next(&self, round_secret: &SecretEncryptKey, sum: f64, update: f64) -> RoundSeed {
        let signer = signing_key_from_encrypt_secret(round_secret);
        let mut msg = [0u8; SEED_LEN + 16];
        msg[..SEED_LEN].copy_from_slice(&self.0);
        msg[SEED_LEN..SEED_LEN + 8].copy_from_slice(&sum.to_le_bytes());
        msg[SEED_LEN + 8..].copy_from_slice(&update.to_le_bytes());
        RoundSeed(sha256(signer.sign(&msg).as_bytes()))
    }
}

/// What a participant does in a round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Task {
    /// Publishes an ephemeral key in Sum and the aggregated mask in Sum2.
    Sum,
    /// Sends a masked model in Update.
    Update,
    /// Waits for the next round.
    None,
}

/// Whether a task signature is eligible at probability `p` (exact rule of SPEC §1.3).
///
/// `p < 0` (and NaN) is never eligible, `p > 1` always is.
pub fn is_eligible(signature: &Signature, p: f64) -> bool {
    if p.is_nan() || p < 0.0 {
        return false;
    }
    if p > 1.0 {
        return true;
    }
    let h = BigUint::from_bytes_le(&sha256(signature.as_bytes()));
    let max = (BigUint::one() << 256u32) - 1u32;
    // p = m · 2^e exactly. Compare H · 2^-e ≤ m · (2^256 − 1) with integers.
    let Some(Dyadic {
        mant: m, exp: e, ..
    }) = Dyadic::from_f64(p)
    else {
        return false;
    };
    if m == 0 {
        return h == BigUint::default();
    }
    let mut lhs = h;
    let mut rhs = BigUint::from(m) * max;
    if e < 0 {
        lhs <<= e.unsigned_abs();
    } else {
        rhs <<= e.unsigned_abs();
    }
    lhs <= rhs
}

/// A participant's two task signatures for one round.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskSignatures {
    /// Signature over `seed ‖ "sum"`.
    pub sum: Signature,
    /// Signature over `seed ‖ "update"`.
    pub update: Signature,
}

impl TaskSignatures {
    /// Signs both task messages of `seed`.
    pub fn sign(secret: &SecretSigningKey, seed: &RoundSeed) -> Self {
        Self {
            sum: secret.sign(&seed.task_message(SUM_SUFFIX)),
            update: secret.sign(&seed.task_message(UPDATE_SUFFIX)),
        }
    }

    /// The role these signatures give (sum has priority); signatures are not verified.
    pub fn task(&self, sum_prob: f64, update_prob: f64) -> Task {
        if is_eligible(&self.sum, sum_prob) {
            Task::Sum
        } else if is_eligible(&self.update, update_prob) {
            Task::Update
        } else {
            Task::None
        }
    }
}

/// Checks, as the coordinator does, that `pk` really is a summer of the round: its sum
/// signature is valid and eligible.
pub fn verify_sum_task(
    pk: &PublicSigningKey,
    seed: &RoundSeed,
    sum_sig: &Signature,
    p: f64,
) -> bool {
    pk.is_valid(&seed.task_message(SUM_SUFFIX), sum_sig) && is_eligible(sum_sig, p)
}

/// Checks, as the coordinator does, that `pk` really is an updater of the round: it is not a
/// summer (its sum signature is invalid or not eligible) and its update signature is valid and
/// eligible.
pub fn verify_update_task(
    pk: &PublicSigningKey,
    seed: &RoundSeed,
    sum_sig: &Signature,
    update_sig: &Signature,
    sum_prob: f64,
    update_prob: f64,
) -> bool {
    !verify_sum_task(pk, seed, sum_sig, sum_prob)
        && pk.is_valid(&seed.task_message(UPDATE_SUFFIX), update_sig)
        && is_eligible(update_sig, update_prob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes() {
        let sig = Signature::from([0u8; 64]);
        assert!(!is_eligible(&sig, -0.5));
        assert!(!is_eligible(&sig, f64::NAN));
        assert!(is_eligible(&sig, 1.5));
        assert!(is_eligible(&sig, 1.0));
        assert!(!is_eligible(&sig, 0.0));
        assert!(!is_eligible(&sig, f64::MIN_POSITIVE / 4.0));
    }
}
