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

    /// A verifier for `signature` over a message that is fed in pieces
    /// ([`SignatureVerifier::update`]); it accepts exactly what [`PublicSigningKey::verify`]
    /// accepts. Keys and signatures that can never verify are refused here already.
    pub fn verifier(&self, signature: &Signature) -> Result<SignatureVerifier, CryptoError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidPublicKey)?;
        // The checks `verify_strict` makes besides the equation: no small-order key or `R`.
        let mut r = [0u8; 32];
        r.copy_from_slice(&signature.0[..32]);
        let r_ok = curve25519_dalek::edwards::CompressedEdwardsY(r)
            .decompress()
            .is_some_and(|p| !p.is_small_order());
        if key.is_weak() || !r_ok {
            return Err(CryptoError::InvalidSignature);
        }
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_stream(&sig)
            .map(SignatureVerifier)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

/// An Ed25519 signature check over a message fed in pieces (see
/// [`PublicSigningKey::verifier`]).
pub struct SignatureVerifier(ed25519_dalek::StreamVerifier);

impl SignatureVerifier {
    /// Feeds the next piece of the signed message.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// Whether the signature is valid for everything fed.
    pub fn finish(self) -> Result<(), CryptoError> {
        self.0
            .finalize_and_verify()
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignatureVerifier")
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

    /// Opens a sealed box that arrives in pieces, without ever holding the sealed bytes in one
    /// buffer: see [`SealedBoxReader`].
    pub fn open_reader(&self) -> SealedBoxReader<'_> {
        SealedBoxReader {
            keys: self,
            head: [0; SEALBYTES],
            head_len: 0,
            body: None,
        }
    }
}

/// `crypto_box_seal_open` over a sealed box fed in pieces: each piece of ciphertext is
/// authenticated (Poly1305) and decrypted (XSalsa20) while it is still in the cache, and the
/// plaintext is appended to a buffer the caller owns, so buffers can be reused.
///
/// The plaintext is **unauthenticated** until [`SealedBoxReader::finish`] returns `Ok`: a
/// caller may look at it early only to reject a message sooner, never to act on it.
pub struct SealedBoxReader<'k> {
    keys: &'k EncryptKeyPair,
    /// Ephemeral public key and tag, collected first.
    head: [u8; SEALBYTES],
    head_len: usize,
    body: Option<SealedBody>,
}

struct SealedBody {
    cipher: salsa20::XSalsa20,
    mac: poly1305::Poly1305,
    /// Ciphertext bytes not yet authenticated (less than one Poly1305 block).
    tail: [u8; 16],
    tail_len: usize,
}

impl SealedBoxReader<'_> {
    /// Feeds the next piece of the sealed box; the plaintext it carries is appended to `out`.
    pub fn update(&mut self, mut piece: &[u8], out: &mut Vec<u8>) {
        use poly1305::universal_hash::UniversalHash;
        use salsa20::cipher::StreamCipher;
        if self.body.is_none() {
            let take = (SEALBYTES - self.head_len).min(piece.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&piece[..take]);
            self.head_len += take;
            piece = &piece[take..];
            if self.head_len < SEALBYTES {
                return;
            }
            self.body = Some(self.start());
        }
        let Some(body) = self.body.as_mut() else {
            return;
        };
        // Poly1305 runs over whole blocks; a partial block waits for the next piece.
        let mut rest = piece;
        if body.tail_len > 0 {
            let take = (16 - body.tail_len).min(rest.len());
            body.tail[body.tail_len..body.tail_len + take].copy_from_slice(&rest[..take]);
            body.tail_len += take;
            rest = &rest[take..];
            if body.tail_len == 16 {
                body.mac.update_padded(&body.tail);
                body.tail_len = 0;
            }
        }
        let whole = rest.len() / 16 * 16;
        // A multiple of the block size: no padding is added.
        body.mac.update_padded(&rest[..whole]);
        let left = &rest[whole..];
        body.tail[..left.len()].copy_from_slice(left);
        body.tail_len += left.len();

        let start = out.len();
        out.extend_from_slice(piece);
        body.cipher.apply_keystream(&mut out[start..]);
    }

    fn start(&self) -> SealedBody {
        use poly1305::universal_hash::KeyInit;
        use salsa20::cipher::{KeyIvInit, StreamCipher};
        let mut epk = [0u8; ENCRYPT_KEY_LEN];
        epk.copy_from_slice(&self.head[..ENCRYPT_KEY_LEN]);
        // The nonce and key of libsodium's sealed box: BLAKE2b-192(epk ‖ pk) and
        // HSalsa20(X25519(sk, epk), 0), computed as `crypto_box` computes them.
        let nonce = {
            use blake2::Digest as _;
            let mut h = blake2::Blake2b::<blake2::digest::consts::U24>::new();
            h.update(epk);
            h.update(self.keys.public.0);
            h.finalize()
        };
        let shared = Zeroizing::new(
            (self.keys.secret.0.to_scalar() * curve25519_dalek::montgomery::MontgomeryPoint(epk))
                .to_bytes(),
        );
        let key = Zeroizing::new(salsa20::hsalsa::<salsa20::cipher::consts::U10>(
            (&*shared).into(),
            &Default::default(),
        ));
        let mut cipher = salsa20::XSalsa20::new(&key, &nonce);
        let mut mac_key = Zeroizing::new(poly1305::Key::default());
        cipher.apply_keystream(&mut mac_key);
        SealedBody {
            cipher,
            mac: poly1305::Poly1305::new(&mac_key),
            tail: [0; 16],
            tail_len: 0,
        }
    }

    /// Checks the tag over everything fed. On `Err` the plaintext appended to the caller's
    /// buffer is garbage (or forged) and must be discarded.
    pub fn finish(self) -> Result<(), CryptoError> {
        use subtle::ConstantTimeEq;
        let Some(body) = self.body else {
            return Err(CryptoError::OpenFailed);
        };
        let tag = body.mac.compute_unpadded(&body.tail[..body.tail_len]);
        if bool::from(tag.as_slice().ct_eq(&self.head[ENCRYPT_KEY_LEN..])) {
            Ok(())
        } else {
            Err(CryptoError::OpenFailed)
        }
    }
}

impl fmt::Debug for SealedBoxReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedBoxReader")
            .field("started", &self.body.is_some())
            .finish_non_exhaustive()
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

    /// Opens `sealed` with the reader, cut into pieces at `cuts` (byte offsets).
    fn open_in_pieces(
        pair: &EncryptKeyPair,
        sealed: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut reader = pair.open_reader();
        let mut out = Vec::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (sealed.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain([sealed.len()]) {
            reader.update(&sealed[at..cut.max(at)], &mut out);
            at = cut.max(at);
        }
        reader.finish().map(|()| out)
    }

    proptest::proptest! {
        #[test]
        fn reader_opens_what_open_opens(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
            cuts in proptest::collection::vec(0usize..800, 0..8),
            flip in proptest::option::of((0usize..800, 1u8..=255)),
        ) {
            let pair = EncryptKeyPair::from_seed(&[5; 32]);
            let mut sealed = pair.public.seal(&plain, &mut OsRng);
            if let Some((at, x)) = flip {
                let at = at % sealed.len();
                sealed[at] ^= x;
            }
            let whole = pair.open(&sealed);
            let pieces = open_in_pieces(&pair, &sealed, &cuts);
            proptest::prop_assert_eq!(whole.is_ok(), pieces.is_ok());
            if let (Ok(a), Ok(b)) = (&whole, &pieces) {
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!(a, &plain);
            }
            // Truncated boxes never open.
            let cut = sealed.len().saturating_sub(1 + cuts.first().copied().unwrap_or(0) % 60);
            proptest::prop_assert!(open_in_pieces(&pair, &sealed[..cut], &cuts).is_err());
        }

        #[test]
        fn verifier_accepts_what_verify_accepts(
            msg in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cut in 0usize..300,
            flip in proptest::option::of((0usize..64, 1u8..=255)),
        ) {
            let pair = SigningKeyPair::from_seed(&[8; 32]);
            let mut sig = *pair.sign(&msg).as_bytes();
            if let Some((at, x)) = flip {
                sig[at] ^= x;
            }
            let sig = Signature::from(sig);
            let whole = pair.public.verify(&msg, &sig);
            let streamed = pair.public.verifier(&sig).and_then(|mut v| {
                let cut = cut.min(msg.len());
                v.update(&msg[..cut]);
                v.update(&msg[cut..]);
                v.finish()
            });
            proptest::prop_assert_eq!(whole.is_ok(), streamed.is_ok());
        }
    }

    #[test]
    fn one_megabyte_box_in_uneven_pieces() {
        let pair = EncryptKeyPair::from_seed(&[6; 32]);
        let plain: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 256) as u8).collect();
        let sealed = pair.public.seal(&plain, &mut OsRng);
        let cuts: Vec<usize> = (1..200).map(|i| i * i * 23 + i).collect();
        assert_eq!(open_in_pieces(&pair, &sealed, &cuts).unwrap(), plain);
        let mut bad = sealed.clone();
        bad[700_000] ^= 1;
        assert_eq!(
            open_in_pieces(&pair, &bad, &cuts),
            Err(CryptoError::OpenFailed)
        );
        assert_eq!(
            open_in_pieces(&pair, &sealed[..40], &[]),
            Err(CryptoError::OpenFailed)
        );
        let other = EncryptKeyPair::from_seed(&[7; 32]);
        assert_eq!(
            open_in_pieces(&other, &sealed, &cuts),
            Err(CryptoError::OpenFailed)
        );
    }

    #[test]
    fn verifier_refuses_small_order_keys_and_points() {
        let pair = SigningKeyPair::from_seed(&[1; 32]);
        let sig = pair.sign(b"hello");
        // The identity point (encoding 1, 0, ...) is of small order: as a key and as `R`.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicSigningKey::from(identity);
        assert!(weak.verify(b"hello", &sig).is_err());
        assert_eq!(
            weak.verifier(&sig).unwrap_err(),
            CryptoError::InvalidSignature
        );
        let mut small_r = *sig.as_bytes();
        small_r[..32].copy_from_slice(&identity);
        let small_r = Signature::from(small_r);
        assert!(pair.public.verify(b"hello", &small_r).is_err());
        assert!(pair.public.verifier(&small_r).is_err());
        // A non-canonical `s` (high bit set) is refused by both.
        let mut high_s = *sig.as_bytes();
        high_s[63] |= 0x80;
        let high_s = Signature::from(high_s);
        assert!(pair.public.verify(b"hello", &high_s).is_err());
        assert!(pair.public.verifier(&high_s).is_err());
        let mut v = pair.public.verifier(&sig).unwrap();
        v.update(b"hel");
        v.update(b"lo");
        assert!(v.finish().is_ok());
    }
}
