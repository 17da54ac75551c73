//! The payloads of PET messages (SPEC §4.2).

use std::collections::BTreeMap;

use super::{DecodeError, Tag};
use crate::crypto::{PublicEncryptKey, PublicSigningKey, Signature};
use crate::mask::{EncryptedMaskSeed, MaskObject, ENCRYPTED_MASK_SEED_LEN};

/// Bytes of one local seed dictionary entry (`sum_pk ‖ encrypted seed`).
pub const SEED_DICT_ENTRY_LEN: usize = 32 + ENCRYPTED_MASK_SEED_LEN;

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    if bytes.len() < n {
        return Err(DecodeError::Truncated {
            what,
            needed: n,
            available: bytes.len(),
        });
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn signature(bytes: &mut &[u8], what: &'static str) -> Result<Signature, DecodeError> {
    let mut sig = [0u8; 64];
    sig.copy_from_slice(take(bytes, 64, what)?);
    Ok(Signature::from(sig))
}

fn done(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes(bytes.len()))
    }
}

/// A Sum message: the summer's ephemeral key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sum {
    /// Signature over `seed ‖ "sum"`.
    pub sum_signature: Signature,
    /// The summer's ephemeral X25519 key for this round.
    pub ephm_pk: PublicEncryptKey,
}

/// An Update message: a masked model and the mask seed sealed to every summer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// Signature over `seed ‖ "sum"` (proves the sender is *not* a summer).
    pub sum_signature: Signature,
    /// Signature over `seed ‖ "update"`.
    pub update_signature: Signature,
    /// The masked model and scalar.
    pub masked_model: MaskObject,
    /// The mask seed sealed to each summer's ephemeral key.
    pub local_seed_dict: LocalSeedDict,
}

/// A Sum2 message: the summer's aggregate of all masks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sum2 {
    /// Signature over `seed ‖ "sum"`.
    pub sum_signature: Signature,
    /// The aggregated mask.
    pub model_mask: MaskObject,
}

/// A part of a message too large for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Position of the chunk, from 0.
    pub id: u16,
    /// Identifier shared by all chunks of one message.
    pub message_id: u16,
    /// Whether this is the last chunk.
    pub last: bool,
    /// The carried bytes of the payload.
    pub data: Vec<u8>,
}

/// A summer's public key → the updater's mask seed sealed to that summer's ephemeral key.
pub type LocalSeedDict = BTreeMap<PublicSigningKey, EncryptedMaskSeed>;

/// The payload of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Sum.
    Sum(Sum),
    /// Update.
    Update(Update),
    /// Sum2.
    Sum2(Sum2),
    /// A chunk of one of the above.
    Chunk(Chunk),
}

impl Payload {
    /// Decodes a complete (non-chunk) payload of type `tag`.
    pub fn decode(tag: Tag, mut bytes: &[u8]) -> Result<Payload, DecodeError> {
        let b = &mut bytes;
        match tag {
            Tag::Sum => {
                let sum_signature = signature(b, "sum")?;
                let pk = take(b, 32, "sum")?;
                done(b)?;
                Ok(Payload::Sum(Sum {
                    sum_signature,
                    ephm_pk: PublicEncryptKey::from(<[u8; 32]>::try_from(pk).unwrap_or_default()),
                }))
            }
            Tag::Update => {
                let sum_signature = signature(b, "update")?;
                let update_signature = signature(b, "update")?;
                let (masked_model, used) = MaskObject::decode(b)?;
                *b = &b[used..];
                let local_seed_dict = decode_seed_dict(b)?;
                Ok(Payload::Update(Update {
                    sum_signature,
                    update_signature,
                    masked_model,
                    local_seed_dict,
                }))
            }
            Tag::Sum2 => {
                let sum_signature = signature(b, "sum2")?;
                let model_mask = MaskObject::from_bytes(b)?;
                Ok(Payload::Sum2(Sum2 {
                    sum_signature,
                    model_mask,
                }))
            }
        }
    }

    /// Serialised length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Payload::Sum(_) => 96,
            Payload::Update(u) => {
                128 + u.masked_model.buffer_len()
                    + 4
                    + SEED_DICT_ENTRY_LEN * u.local_seed_dict.len()
            }
            Payload::Sum2(s) => 64 + s.model_mask.buffer_len(),
            Payload::Chunk(c) => super::CHUNK_HEADER_LEN + c.data.len(),
        }
    }

    /// Appends the encoding to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sum(s) => {
                out.extend_from_slice(s.sum_signature.as_bytes());
                out.extend_from_slice(s.ephm_pk.as_bytes());
            }
            Payload::Update(u) => {
                out.extend_from_slice(u.sum_signature.as_bytes());
                out.extend_from_slice(u.update_signature.as_bytes());
                u.masked_model.write_to(out);
                write_seed_dict(&u.local_seed_dict, out);
            }
            Payload::Sum2(s) => {
                out.extend_from_slice(s.sum_signature.as_bytes());
                s.model_mask.write_to(out);
            }
            Payload::Chunk(c) => c.write_to(out),
        }
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.write_to(&mut out);
        out
    }
}

/// `total_len: u32 BE (counting itself) ‖ entries of sum_pk(32) ‖ encrypted seed(80)`.
pub fn write_seed_dict(dict: &LocalSeedDict, out: &mut Vec<u8>) {
    let len = 4 + SEED_DICT_ENTRY_LEN * dict.len();
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    for (pk, seed) in dict {
        out.extend_from_slice(pk.as_bytes());
        out.extend_from_slice(seed.as_bytes());
    }
}

/// Decodes a local seed dictionary that fills `bytes` exactly; entries in any order.
pub fn decode_seed_dict(bytes: &[u8]) -> Result<LocalSeedDict, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated {
            what: "local seed dict",
            needed: 4,
            available: bytes.len(),
        });
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[..4]);
    let len = u32::from_be_bytes(len) as usize;
    if len < 4 || !(len - 4).is_multiple_of(SEED_DICT_ENTRY_LEN) {
        return Err(DecodeError::SeedDict("length is not 4 + a multiple of 112"));
    }
    if len > bytes.len() {
        return Err(DecodeError::Truncated {
            what: "local seed dict",
            needed: len,
            available: bytes.len(),
        });
    }
    done(&bytes[len..])?;
    let mut dict = LocalSeedDict::new();
    for entry in bytes[4..len].chunks_exact(SEED_DICT_ENTRY_LEN) {
        let (pk, seed) = entry.split_at(32);
        let pk = PublicSigningKey::from_slice(pk).map_err(|_| DecodeError::SeedDict("key"))?;
        let seed =
            EncryptedMaskSeed::from_slice(seed).map_err(|_| DecodeError::SeedDict("seed"))?;
        if dict.insert(pk, seed).is_some() {
            return Err(DecodeError::SeedDict("duplicate sum participant key"));
        }
    }
    Ok(dict)
}

impl Chunk {
    /// Decodes a chunk payload.
    pub fn decode(bytes: &[u8]) -> Result<Chunk, DecodeError> {
        if bytes.len() < super::CHUNK_HEADER_LEN {
            return Err(DecodeError::Truncated {
                what: "chunk",
                needed: super::CHUNK_HEADER_LEN,
                available: bytes.len(),
            });
        }
        Ok(Chunk {
            id: u16::from_be_bytes([bytes[0], bytes[1]]),
            message_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            last: bytes[4] & 1 != 0,
            data: bytes[super::CHUNK_HEADER_LEN..].to_vec(),
        })
    }

    /// Appends the encoding to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&[self.last as u8, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}
