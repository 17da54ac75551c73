//! Mask seeds: the one-time secret from which an updater's mask is expanded, and its
//! sealed form that each summer receives (SPEC §2.4).

use std::fmt;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::group::Group;
use super::object::{MaskObject, MaskUnit, MaskVect};
use super::prng::MaskRng;
use crate::crypto::{
    random_seed, CryptoError, EncryptKeyPair, PublicEncryptKey, SEALBYTES, SEED_LEN,
};

/// Length of an encrypted mask seed (sealed box of 32 bytes).
pub const ENCRYPTED_MASK_SEED_LEN: usize = SEED_LEN + SEALBYTES;

/// A 32-byte mask seed. Wiped on drop; `Debug` prints no key material.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MaskSeed([u8; SEED_LEN]);

impl fmt::Debug for MaskSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskSeed(<redacted>)")
    }
}

impl MaskSeed {
    /// A fresh seed from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(random_seed(rng))
    }

    /// A seed from known bytes.
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (secret).
    pub fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }

    /// The mask PRNG of this seed.
    pub fn rng(&self) -> MaskRng {
        MaskRng::from_seed(self.0)
    }

    /// Expands the seed into a mask: first the unit mask, then `len` vector masks, exactly in
    /// the reference's order (SPEC §2.5).
    pub fn derive_mask(&self, len: usize, vect: &Group, unit: &Group) -> MaskObject {
        let mut rng = self.rng();
        let u = unit.sample(&mut rng, 1);
        let v = vect.sample(&mut rng, len);
        MaskObject {
            vect: MaskVect::from_group(vect, v),
            unit: MaskUnit::from_group(unit, u),
        }
    }

    /// Seals the seed to a summer's ephemeral key.
    pub fn encrypt(
        &self,
        pk: &PublicEncryptKey,
        rng: &mut impl CryptoRngCore,
    ) -> EncryptedMaskSeed {
        let sealed = pk.seal(&self.0, rng);
        let mut out = [0u8; ENCRYPTED_MASK_SEED_LEN];
        if sealed.len() == ENCRYPTED_MASK_SEED_LEN {
            out.copy_from_slice(&sealed);
        }
        EncryptedMaskSeed(out)
    }
}

/// A mask seed sealed to a summer's ephemeral key (80 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptedMaskSeed(pub [u8; ENCRYPTED_MASK_SEED_LEN]);

impl fmt::Debug for EncryptedMaskSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptedMaskSeed({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl From<[u8; ENCRYPTED_MASK_SEED_LEN]> for EncryptedMaskSeed {
    fn from(bytes: [u8; ENCRYPTED_MASK_SEED_LEN]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for EncryptedMaskSeed {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl EncryptedMaskSeed {
    /// Decodes exactly 80 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        bytes.try_into().map(Self).map_err(|_| CryptoError::Length {
            what: "encrypted mask seed",
            expected: ENCRYPTED_MASK_SEED_LEN,
            actual: bytes.len(),
        })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ENCRYPTED_MASK_SEED_LEN] {
        &self.0
    }

    /// Opens the seed with the summer's ephemeral key pair; the plaintext must be 32 bytes.
    pub fn decrypt(&self, keys: &EncryptKeyPair) -> Result<MaskSeed, CryptoError> {
        let mut plain = keys.open(&self.0)?;
        let seed = <[u8; SEED_LEN]>::try_from(plain.as_slice()).map_err(|_| CryptoError::Length {
            what: "mask seed",
            expected: SEED_LEN,
            actual: plain.len(),
        });
        plain.zeroize();
        seed.map(MaskSeed)
    }
}
