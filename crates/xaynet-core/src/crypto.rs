//! Keys, signatures, sealed boxes and hashing (SPEC §2).
//!
//! * Participants are identified by Ed25519 keys ([`SigningKeyPair`]); every message and
//!   every task signature is an Ed25519 detached [`Signature`], verified strictly.
//! * The coordinator's round key and the summers' ephemeral keys are X25519 keys
//!   ([`EncryptKeyPair`]); messages and mask seeds are encrypted with libsodium-compatible
//!   sealed boxes (`crypto_box_seal`: X25519 + XSalsa20-Poly1305, 48 bytes overhead).
//!
//! Secret keys are wiped on drop and their `Debug` output never shows key material.
//! Randomness is always an argument ([`rand_core::CryptoRngCore`]) so that protocol code can be
//! driven deterministically in tests; [`rand_core::OsRng`] is the production source.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

pub use rand_core::OsRng;

/// Length of an Ed25519 public key.
pub const PUBLIC_SIGNING_KEY_LEN: usize = 32;
/// Length of an Ed25519 secret key in libsodium layout (`seed ‖ public key`).
pub const SECRET_SIGNING_KEY_LEN: usize = 64;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an X25519 public or secret key.
pub const ENCRYPT_KEY_LEN: usize = 32;
/// Bytes a sealed box adds to its plaintext (ephemeral public key and Poly1305 tag).
pub const SEALBYTES: usize = 48;
/// Length of a 32-byte seed (key seeds, round seeds, mask seeds).
pub const SEED_LEN: usize = 32;

/// Errors of the cryptographic layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key, signature or seed had the wrong number of bytes.
    #[error("expected {expected} bytes for {what}, got {actual}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The length the type requires.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// The bytes are not a valid Ed25519 public key (not a canonical curve point).
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    /// A 64-byte libsodium secret key whose public half does not match its seed.
    #[error("secret key's public half does not match its seed")]
    KeyMismatch,
    /// Signature verification failed.
    #[error("invalid signature")]
    InvalidSignature,
    /// A sealed box could not be opened: wrong key, tampered or truncated ciphertext.
    #[error("sealed box could not be opened (wrong key or corrupted ciphertext)")]
    OpenFailed,
}

fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::Length {
        what,
        expected: N,
        actual: bytes.len(),
    })
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// 32 bytes from a cryptographically secure generator.
pub fn random_seed(rng: &mut impl CryptoRngCore) -> [u8; SEED_LEN] {
    let mut seed = [0u8; SEED_LEN];
    rng.fill_bytes(&mut seed);
    seed
}

macro_rules! public_bytes {
    ($name:ident, $len:expr, $what:literal) => {
        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            /// Decodes from exactly the right number of bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
                Ok(Self(fixed($what, bytes)?))
            }
        }
        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }
        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                for b in &self.0[..8] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }
    };
}

/// An Ed25519 public key: a participant's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicSigningKey([u8; PUBLIC_SIGNING_KEY_LEN]);
public_bytes!(
    PublicSigningKey,
    PUBLIC_SIGNING_KEY_LEN,
    "Ed25519 public key"
);

/// An Ed25519 detached signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_LEN]);
public_bytes!(Signature, SIGNATURE_LEN, "Ed25519 signature");

/// An X25519 public key: the coordinator's round key or a summer's ephemeral key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicEncryptKey([u8; ENCRYPT_KEY_LEN]);
public_bytes!(PublicEncryptKey, ENCRYPT_KEY_LEN, "X25519 public key");

impl PublicSigningKey {
    /// Verifies `signature` over `message` with RFC 8032 strict rules (canonical encodings,
    /// no small-order keys or `R` points), which rejects what libsodium rejects.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidPublicKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig)
            .map_err(|_| CryptoError::InvalidSignature)
    }

    /// Whether `signature` over `message` is valid (see [`PublicSigningKey::verify`]).
    pub fn is_valid(&self, message: &[u8], signature: &Signature) -> bool {
        self.verify(message, signature).is_ok()
    }
}

/// An Ed25519 secret key. Wiped on drop; `Debug` prints no key material.
#[derive(Clone)]
pub struct SecretSigningKey(SigningKey);

impl SecretSigningKey {
    /// The key derived from a 32-byte seed (RFC 8032; libsodium `crypto_sign_seed_keypair`).
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Decodes libsodium's 64-byte layout `seed ‖ public key`, checking that both halves agree.
    pub fn from_libsodium_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let raw = Zeroizing::new(fixed::<SECRET_SIGNING_KEY_LEN>(
            "Ed25519 secret key",
            bytes,
        )?);
        let key = SigningKey::from_keypair_bytes(&raw).map_err(|_| CryptoError::KeyMismatch)?;
        Ok(Self(key))
    }

    /// The 64-byte libsodium layout `seed ‖ public key` (handle with care: this is the secret).
    pub fn to_libsodium_bytes(&self) -> Zeroizing<[u8; SECRET_SIGNING_KEY_LEN]> {
        Zeroizing::new(self.0.to_keypair_bytes())
    }

    /// The 32-byte seed the key was derived from (handle with care: this is the secret).
    pub fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicSigningKey {
        PublicSigningKey(self.0.verifying_key().to_bytes())
    }

    /// A detached signature over `message` (deterministic, as Ed25519 always is).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSigningKey(<redacted>)")
    }
}

/// A participant's Ed25519 key pair.
#[derive(Clone, Debug)]
pub struct SigningKeyPair {
    /// The public key (the participant's identity).
    pub public: PublicSigningKey,
    /// The secret key.
    pub secret: SecretSigningKey,
}

impl SigningKeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let seed = Zeroizing::new(random_seed(rng));
        Self::from_seed(&seed)
    }

    /// The key pair derived from a 32-byte seed.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let secret = SecretSigningKey::from_seed(seed);
        Self {
            public: secret.public_key(),
            secret,
        }
    }

    /// Signs `message` with the secret key.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.secret.sign(message)
    }
}

/// An X25519 secret key. Wiped on drop; `Debug` prints no key material.
#[derive(Clone)]
pub struct SecretEncryptKey(crypto_box::SecretKey);

impl SecretEncryptKey {
    /// Uses 32 raw bytes as the secret scalar (clamping happens inside X25519).
    pub fn from_bytes(bytes: [u8; ENCRYPT_KEY_LEN]) -> Self {
        Self(crypto_box::SecretKey::from(bytes))
    }

    /// Decodes 32 raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut raw = fixed::<ENCRYPT_KEY_LEN>("X25519 secret key", bytes)?;
        let key = Self::from_bytes(raw);
        raw.zeroize();
        Ok(key)
    }

    /// The 32 raw secret bytes (handle with care).
    pub fn to_bytes(&self) -> Zeroizing<[u8; ENCRYPT_KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key (`X25519(sk, basepoint)`).
    pub fn public_key(&self) -> PublicEncryptKey {
        PublicEncryptKey(*self.0.public_key().as_bytes())
    }
}

impl fmt::Debug for SecretEncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretEncryptKey(<redacted>)")
    }
}

/// An X25519 key pair: the coordinator's round key or a summer's ephemeral key.
#[derive(Clone, Debug)]
pub struct EncryptKeyPair {
    /// The public key.
    pub public: PublicEncryptKey,
    /// The secret key.
    pub secret: SecretEncryptKey,
}

impl EncryptKeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_secret(SecretEncryptKey::from_bytes(random_seed(rng)))
    }

    /// The key pair of a known secret key.
    pub fn from_secret(secret: SecretEncryptKey) -> Self {
        Self {
            public: secret.public_key(),
            secret,
        }
    }

    /// libsodium's `crypto_box_seed_keypair`: secret = first 32 bytes of SHA-512(seed).
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let digest = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(seed)));
        let mut sk = [0u8; ENCRYPT_KEY_LEN];
        sk.copy_from_slice(&digest[..ENCRYPT_KEY_LEN]);
        let pair = Self::from_secret(SecretEncryptKey::from_bytes(sk));
        sk.zeroize();
        pair
    }

    /// Opens a sealed box addressed to this key pair (libsodium `crypto_box_seal_open`).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < SEALBYTES {
            return Err(CryptoError::OpenFailed);
        }
        self.secret
            .0
            .unseal(sealed)
            .map_err(|_| CryptoError::OpenFailed)
    }
}

impl PublicEncryptKey {
    /// Seals `plaintext` to this key (libsodium `crypto_box_seal`); the output is
    /// `plaintext.len() + SEALBYTES` bytes. Only the holder of the secret key can open it.
    pub fn seal(&self, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let pk = crypto_box::PublicKey::from(self.0);
        // Sealing cannot fail for in-memory buffers: the AEAD only errors on lengths beyond
        // what any `Vec` can hold. Fall back to an empty (unopenable) box rather than panic.
        pk.seal(rng, plaintext).unwrap_or_default()
    }
}

/// The Ed25519 key pair whose *seed* is the raw 32-byte X25519 secret `secret`.
///
/// The reference coordinator signs the next round seed with it (SPEC §1.9, §2.3).
pub fn signing_key_from_encrypt_secret(secret: &SecretEncryptKey) -> SigningKeyPair {
    SigningKeyPair::from_seed(&secret.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let pair = SigningKeyPair::from_seed(&[7; 32]);
        let text = format!("{pair:?}");
        assert!(text.contains("redacted"));
        let seed_hex: String = pair
            .secret
            .seed()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&seed_hex[..16]));
        let enc = EncryptKeyPair::from_seed(&[9; 32]);
        assert!(format!("{enc:?}").contains("redacted"));
    }

    #[test]
    fn sign_verify_and_reject() {
        let pair = SigningKeyPair::from_seed(&[1; 32]);
        let sig = pair.sign(b"hello");
        assert!(pair.public.is_valid(b"hello", &sig));
        assert!(!pair.public.is_valid(b"hellp", &sig));
        let mut bad = *sig.as_bytes();
        bad[63] ^= 0x80;
        assert!(!pair.public.is_valid(b"hello", &Signature::from(bad)));
        // The all-zero point encoding is a small-order key: strict verification refuses it.
        let weak = PublicSigningKey::from([0u8; 32]);
        assert!(weak.verify(b"hello", &sig).is_err());
    }

    #[test]
    fn libsodium_secret_key_layout_roundtrip() {
        let pair = SigningKeyPair::from_seed(&[3; 32]);
        let bytes = pair.secret.to_libsodium_bytes();
        assert_eq!(&bytes[..32], &[3; 32]);
        assert_eq!(&bytes[32..], pair.public.as_bytes());
        let back = SecretSigningKey::from_libsodium_bytes(&bytes[..]).unwrap();
        assert_eq!(back.public_key(), pair.public);
        let mut wrong = *bytes;
        wrong[40] ^= 1;
        assert_eq!(
            SecretSigningKey::from_libsodium_bytes(&wrong).unwrap_err(),
            CryptoError::KeyMismatch
        );
        assert!(matches!(
            SecretSigningKey::from_libsodium_bytes(&bytes[..10]),
            Err(CryptoError::Length { .. })
        ));
    }

    #[test]
    fn seal_then_open() {
        let pair = EncryptKeyPair::generate(&mut OsRng);
        let sealed = pair.public.seal(b"seed", &mut OsRng);
        assert_eq!(sealed.len(), 4 + SEALBYTES);
        assert_eq!(pair.open(&sealed).unwrap(), b"seed");
        let other = EncryptKeyPair::generate(&mut OsRng);
        assert_eq!(other.open(&sealed), Err(CryptoError::OpenFailed));
        assert_eq!(pair.open(&sealed[..47]), Err(CryptoError::OpenFailed));
    }
}
