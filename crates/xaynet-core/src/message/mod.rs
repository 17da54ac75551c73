//! PET messages on the wire (SPEC §4): a 136-byte signed header, a Sum / Update / Sum2 payload
//! or a chunk of one, sealed to the coordinator's round key.
//!
//! ```text
//! 0    64  signature over bytes [64 .. length)
//! 64   32  participant Ed25519 public key
//! 96   32  coordinator X25519 round key
//! 128   4  length (u32 BE, whole message including this header)
//! 132   1  tag: 1 Sum, 2 Update, 3 Sum2
//! 133   1  flags: bit 0 = multipart
//! 134   2  reserved
//! 136   …  payload
//! ```
//!
//! Reading goes [`MessageBuffer::new`] (length checks) → [`MessageBuffer::tag`] (cheap phase
//! filter) → [`MessageBuffer::verify_signature`] → [`Message::from_buffer`] (payload).
//! [`SealedMessageReader`] opens a sealed message and checks its signature in one pass over
//! pieces of it as they arrive (what the coordinator does with request bodies). Writing
//! goes through [`encode`], which signs, and [`split`] / [`Reassembler`] for chunking.

mod chunking;
mod payload;

pub use chunking::{
    encode, split, ChunkError, Reassembler, CHUNK_HEADER_LEN, MIN_MAX_MESSAGE_SIZE,
};
pub use payload::{
    decode_seed_dict, write_seed_dict, Chunk, LocalSeedDict, Payload, Sum, Sum2, Update,
    SEED_DICT_ENTRY_LEN,
};

use crate::crypto::{
    CryptoError, EncryptKeyPair, PublicEncryptKey, PublicSigningKey, SealedBoxReader,
    SecretSigningKey, Signature, SignatureVerifier, SEALBYTES, SIGNATURE_LEN,
};
use crate::mask::{ConfigError, MaskObjectError};
use rand_core::CryptoRngCore;

/// Length of the message header.
pub const HEADER_LEN: usize = 136;
/// Header flag: the payload is a chunk of a larger message.
pub const FLAG_MULTIPART: u8 = 0x01;

/// Errors decoding a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("message too short: {0} bytes, a header alone has 136")]
    TooShort(usize),
    /// The length field disagrees with the buffer.
    #[error("length field says {claimed} bytes, buffer has {available}")]
    InvalidLength {
        /// The header's length field.
        claimed: usize,
        /// The bytes available.
        available: usize,
    },
    /// An unknown message tag.
    #[error("unknown message tag {0}")]
    InvalidTag(u8),
    /// A payload shorter than its fixed fields.
    #[error("{what} payload truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Which payload or field.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Bytes after the end of a complete payload.
    #[error("{0} unexpected bytes after the payload")]
    TrailingBytes(usize),
    /// A malformed masked object.
    #[error("invalid mask object: {0}")]
    MaskObject(#[from] MaskObjectError),
    /// A malformed local seed dictionary.
    #[error("invalid local seed dictionary: {0}")]
    SeedDict(&'static str),
    /// The signature over the message is invalid.
    #[error("invalid message signature")]
    InvalidSignature,
    /// The sealed box did not open.
    #[error("message could not be decrypted")]
    Decrypt,
}

impl From<ConfigError> for DecodeError {
    fn from(e: ConfigError) -> Self {
        DecodeError::MaskObject(MaskObjectError::Config(e))
    }
}

/// The message type (header tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A Sum message.
    Sum = 1,
    /// An Update message.
    Update = 2,
    /// A Sum2 message.
    Sum2 = 3,
}

impl Tag {
    /// Decodes a tag byte.
    pub fn from_byte(b: u8) -> Result<Tag, DecodeError> {
        match b {
            1 => Ok(Tag::Sum),
            2 => Ok(Tag::Update),
            3 => Ok(Tag::Sum2),
            other => Err(DecodeError::InvalidTag(other)),
        }
    }
}

/// A checked view of a signed message: the buffer holds at least a header and at least
/// `length` bytes. Bytes beyond `length` are ignored (the signature does not cover them).
#[derive(Clone, Copy, Debug)]
pub struct MessageBuffer<'a> {
    bytes: &'a [u8],
    header: Header<'a>,
}

impl<'a> MessageBuffer<'a> {
    /// Checks the header's length rules and the tag.
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let header = Header::of(bytes).ok_or(DecodeError::TooShort(bytes.len()))?;
        let claimed = header.length();
        if claimed < HEADER_LEN || claimed > bytes.len() {
            return Err(DecodeError::InvalidLength {
                claimed,
                available: bytes.len(),
            });
        }
        header.tag()?;
        Ok(Self {
            bytes: &bytes[..claimed],
            header,
        })
    }

    /// The signature field.
    pub fn signature(&self) -> Signature {
        self.header.signature()
    }

    /// The sender's public key.
    pub fn participant_pk(&self) -> PublicSigningKey {
        self.header.participant_pk()
    }

    /// The coordinator round key the message was made for.
    pub fn coordinator_pk(&self) -> PublicEncryptKey {
        self.header.coordinator_pk()
    }

    /// The length field.
    pub fn length(&self) -> usize {
        self.header.length()
    }

    /// The tag (checked in [`MessageBuffer::new`]).
    pub fn tag(&self) -> Tag {
        self.header.tag().unwrap_or(Tag::Sum)
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.header.flags()
    }

    /// Whether the payload is a chunk.
    pub fn is_multipart(&self) -> bool {
        self.flags() & FLAG_MULTIPART != 0
    }

    /// The bytes the signature covers: `[64 .. length)`.
    pub fn signed_data(&self) -> &'a [u8] {
        &self.bytes[64..]
    }

    /// The payload: `[136 .. length)`.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The whole message (`[0 .. length)`).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Verifies the sender's signature over `[64 .. length)`.
    pub fn verify_signature(&self) -> Result<(), DecodeError> {
        self.participant_pk()
            .verify(self.signed_data(), &self.signature())
            .map_err(|_| DecodeError::InvalidSignature)
    }
}

/// The fields of the 136-byte header, read from the first bytes of a message without the
/// length checks of [`MessageBuffer::new`] (e.g. while the rest of the message is arriving).
#[derive(Clone, Copy, Debug)]
pub struct Header<'a>(&'a [u8; HEADER_LEN]);

impl<'a> Header<'a> {
    /// The header at the start of `bytes`, if that many bytes are there.
    pub fn of(bytes: &'a [u8]) -> Option<Self> {
        bytes.get(..HEADER_LEN)?.try_into().ok().map(Self)
    }

    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[at..at + N]);
        out
    }

    /// The signature field.
    pub fn signature(&self) -> Signature {
        Signature::from(self.array::<64>(0))
    }

    /// The sender's public key.
    pub fn participant_pk(&self) -> PublicSigningKey {
        PublicSigningKey::from(self.array::<32>(64))
    }

    /// The coordinator round key the message was made for.
    pub fn coordinator_pk(&self) -> PublicEncryptKey {
        PublicEncryptKey::from(self.array::<32>(96))
    }

    /// The length field (the whole message, header included).
    pub fn length(&self) -> usize {
        u32::from_be_bytes(self.array::<4>(128)) as usize
    }

    /// The tag.
    pub fn tag(&self) -> Result<Tag, DecodeError> {
        Tag::from_byte(self.0[132])
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.0[133]
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub participant_pk: PublicSigningKey,
    /// The coordinator's round key.
    pub coordinator_pk: PublicEncryptKey,
    /// The message type; for a chunk, the type of the message it carries a part of.
    pub tag: Tag,
    /// The payload.
    pub payload: Payload,
}

impl Message {
    /// Parses the payload of a checked buffer (the signature is not verified here).
    pub fn from_buffer(buf: &MessageBuffer<'_>) -> Result<Message, DecodeError> {
        let payload = if buf.is_multipart() {
            Payload::Chunk(Chunk::decode(buf.payload())?)
        } else {
            Payload::decode(buf.tag(), buf.payload())?
        };
        Ok(Message {
            participant_pk: buf.participant_pk(),
            coordinator_pk: buf.coordinator_pk(),
            tag: buf.tag(),
            payload,
        })
    }

    /// Parses and verifies a signed message.
    pub fn from_signed_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
        let buf = MessageBuffer::new(bytes)?;
        buf.verify_signature()?;
        Self::from_buffer(&buf)
    }

    /// Opens a sealed message, verifies it and parses it.
    pub fn open(sealed: &[u8], coordinator: &EncryptKeyPair) -> Result<Message, DecodeError> {
        let mut reader = SealedMessageReader::new(coordinator, Vec::with_capacity(sealed.len()));
        reader.update(sealed);
        let opened = reader.finish()?;
        let buf = MessageBuffer::new(opened.bytes())?;
        opened.verify_signature()?;
        Self::from_buffer(&buf)
    }

    /// Serialises and signs the message.
    pub fn to_signed_bytes(&self, secret: &SecretSigningKey) -> Vec<u8> {
        let flags = if matches!(self.payload, Payload::Chunk(_)) {
            FLAG_MULTIPART
        } else {
            0
        };
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.buffer_len());
        out.extend_from_slice(&[0u8; 64]);
        out.extend_from_slice(self.participant_pk.as_bytes());
        out.extend_from_slice(self.coordinator_pk.as_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&[self.tag as u8, flags, 0, 0]);
        self.payload.write_to(&mut out);
        let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[128..132].copy_from_slice(&len.to_be_bytes());
        let sig = secret.sign(&out[64..]);
        out[..64].copy_from_slice(sig.as_bytes());
        out
    }

    /// Serialises, signs and seals the message to the coordinator's round key.
    pub fn seal(&self, secret: &SecretSigningKey, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        self.coordinator_pk.seal(&self.to_signed_bytes(secret), rng)
    }
}

/// Opens a sealed message and hashes it for its signature in one pass, piece by piece: each
/// piece is authenticated, decrypted and hashed while it is in the cache, and the sealed bytes
/// never need to be gathered into one buffer. The plaintext goes into a buffer the caller
/// hands in (and gets back), so large buffers can be reused from message to message.
///
/// Accepts and refuses exactly what [`EncryptKeyPair::open`] followed by
/// [`MessageBuffer::new`] and [`MessageBuffer::verify_signature`] accept and refuse.
pub struct SealedMessageReader<'k> {
    open: SealedBoxReader<'k>,
    plain: Vec<u8>,
    /// Set once the header has arrived; `Err` for a key or signature that cannot verify.
    verifier: Option<Result<SignatureVerifier, CryptoError>>,
    /// End of the signed range (the header's length field).
    signed_end: usize,
    /// Plaintext bytes fed to the verifier so far.
    hashed: usize,
}

/// Pieces are processed in slices of this size so that a slice's plaintext is still in the
/// cache when it is hashed.
const READ_SLICE: usize = 16 * 1024;

impl<'k> SealedMessageReader<'k> {
    /// A reader for a message sealed to `keys`; the plaintext is written into `buffer`
    /// (cleared first).
    pub fn new(keys: &'k EncryptKeyPair, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Self {
            open: keys.open_reader(),
            plain: buffer,
            verifier: None,
            signed_end: 0,
            hashed: 0,
        }
    }

    /// Feeds the next piece of the sealed message.
    pub fn update(&mut self, piece: &[u8]) {
        for slice in piece.chunks(READ_SLICE) {
            self.open.update(slice, &mut self.plain);
            self.hash_new_bytes();
        }
    }

    fn hash_new_bytes(&mut self) {
        if self.verifier.is_none() {
            let Some(header) = Header::of(&self.plain) else {
                return;
            };
            self.signed_end = header.length();
            self.verifier = Some(header.participant_pk().verifier(&header.signature()));
            // The signature covers everything after itself.
            self.hashed = SIGNATURE_LEN;
        }
        if let Some(Ok(verifier)) = &mut self.verifier {
            let end = self.plain.len().min(self.signed_end);
            if end > self.hashed {
                verifier.update(&self.plain[self.hashed..end]);
                self.hashed = end;
            }
        }
    }

    /// The header, once its bytes are in. **Unauthenticated** until
    /// [`SealedMessageReader::finish`]: only for rejecting a message early, never for acting
    /// on it.
    pub fn header(&self) -> Option<Header<'_>> {
        Header::of(&self.plain)
    }

    /// Stops reading (a message refused early) and hands back the buffer, emptied.
    pub fn into_buffer(self) -> Vec<u8> {
        let mut plain = self.plain;
        plain.clear();
        plain
    }

    /// Checks the box's tag and completes the signature check. `Err` means the box did not
    /// open (wrong key, tampered or truncated); the plaintext buffer is wiped.
    pub fn finish(self) -> Result<OpenedMessage, CryptoError> {
        let mut plain = self.plain;
        if let Err(e) = self.open.finish() {
            plain.iter_mut().for_each(|b| *b = 0);
            return Err(e);
        }
        let signature = match self.verifier {
            Some(Ok(v)) if self.hashed == self.signed_end => v.finish(),
            _ => Err(CryptoError::InvalidSignature),
        };
        Ok(OpenedMessage {
            bytes: plain,
            signature,
        })
    }
}

impl std::fmt::Debug for SealedMessageReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedMessageReader")
            .field("plaintext_len", &self.plain.len())
            .finish_non_exhaustive()
    }
}

/// A message that [`SealedMessageReader`] opened; its signature has been checked.
#[derive(Debug)]
pub struct OpenedMessage {
    bytes: Vec<u8>,
    signature: Result<(), CryptoError>,
}

impl OpenedMessage {
    /// The signed message (header and payload); parse it with [`MessageBuffer::new`].
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The result of the signature check (as [`MessageBuffer::verify_signature`]).
    pub fn verify_signature(&self) -> Result<(), DecodeError> {
        self.signature
            .clone()
            .map_err(|_| DecodeError::InvalidSignature)
    }

    /// The plaintext buffer, for reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }
}

/// Bytes a signed message of `payload_len` bytes takes once sealed.
pub fn sealed_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len + SEALBYTES
}

impl From<CryptoError> for DecodeError {
    fn from(_: CryptoError) -> Self {
        DecodeError::Decrypt
    }
}
