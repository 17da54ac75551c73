//! Splitting messages into chunks for a maximum message size, and putting them back together
//! (SPEC §4.4).
//!
//! `max_message_size` caps the **sealed** size of each request. A payload that does not fit in
//! `max_message_size − 136 − 48` bytes is cut into chunks of `max_message_size − 192` bytes;
//! every chunk is a complete message of its own (multipart flag, the original tag), signed and
//! sealed separately. All chunks share one random `message_id`.

use std::collections::BTreeMap;

use super::{DecodeError, Message, Payload, Tag, HEADER_LEN};
use crate::crypto::{SecretSigningKey, SEALBYTES};
use crate::message::payload::Chunk;

/// Bytes of a chunk header (`id ‖ message_id ‖ flags ‖ reserved`).
pub const CHUNK_HEADER_LEN: usize = 8;
/// The smallest maximum message size that leaves room for chunk data (the reference's
/// encoder also requires more than 9 payload bytes per message).
pub const MIN_MAX_MESSAGE_SIZE: usize = HEADER_LEN + SEALBYTES + 10;

/// Errors splitting or reassembling chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The maximum message size leaves no room for chunk data.
    #[error("maximum message size {0} is too small: it must be at least 194 bytes")]
    MaxMessageSizeTooSmall(usize),
    /// More than 65 536 chunks would be needed.
    #[error("message too large: it would need more than 65536 chunks")]
    TooManyChunks,
    /// A chunk claims a position after the last chunk.
    #[error("chunk {id} comes after the last chunk {last}")]
    AfterLast {
        /// The chunk's id.
        id: u16,
        /// The last chunk's id.
        last: u16,
    },
    /// Two different chunks claim to be the last one.
    #[error("conflicting last chunks")]
    ConflictingLast,
    /// The chunks add up to more than the allowed size.
    #[error("reassembled message exceeds {0} bytes")]
    TooLarge(usize),
    /// The reassembled payload is malformed.
    #[error("reassembled payload is invalid: {0}")]
    Decode(#[from] DecodeError),
}

/// Cuts `payload` into chunks if it does not fit one message of `max_message_size` sealed
/// bytes; `None` if it fits (or if `max_message_size` is `None` or 0, meaning "unlimited").
pub fn split(
    payload: &[u8],
    max_message_size: Option<usize>,
    message_id: u16,
) -> Result<Option<Vec<Chunk>>, ChunkError> {
    let max = match max_message_size {
        None | Some(0) => return Ok(None),
        Some(m) => m,
    };
    if max < MIN_MAX_MESSAGE_SIZE {
        return Err(ChunkError::MaxMessageSizeTooSmall(max));
    }
    let max_payload = max - HEADER_LEN - SEALBYTES;
    if payload.len() <= max_payload {
        return Ok(None);
    }
    let data_len = max_payload - CHUNK_HEADER_LEN;
    let n = payload.len().div_ceil(data_len);
    if n > usize::from(u16::MAX) + 1 {
        return Err(ChunkError::TooManyChunks);
    }
    Ok(Some(
        payload
            .chunks(data_len)
            .enumerate()
            .map(|(i, data)| Chunk {
                id: i as u16,
                message_id,
                last: i + 1 == n,
                data: data.to_vec(),
            })
            .collect(),
    ))
}

/// Signs `message`, split into chunks if needed; returns the signed messages to seal and send
/// in order. `message_id` is the random identifier for the chunks (unused if no split).
pub fn encode(
    message: &Message,
    secret: &SecretSigningKey,
    max_message_size: Option<usize>,
    message_id: u16,
) -> Result<Vec<Vec<u8>>, ChunkError> {
    let payload = message.payload.to_bytes();
    match split(&payload, max_message_size, message_id)? {
        None => Ok(vec![message.to_signed_bytes(secret)]),
        Some(chunks) => Ok(chunks
            .into_iter()
            .map(|chunk| {
                Message {
                    participant_pk: message.participant_pk,
                    coordinator_pk: message.coordinator_pk,
                    tag: message.tag,
                    payload: Payload::Chunk(chunk),
                }
                .to_signed_bytes(secret)
            })
            .collect()),
    }
}

/// Collects the chunks of one message (one sender, one `message_id`) until it is complete.
///
/// Memory is bounded by `max_bytes` of chunk data; a repeated chunk id replaces the earlier
/// chunk, as in the reference.
#[derive(Debug)]
pub struct Reassembler {
    tag: Tag,
    chunks: BTreeMap<u16, Vec<u8>>,
    last: Option<u16>,
    bytes: usize,
    max_bytes: usize,
}

impl Reassembler {
    /// An empty reassembler for a message of type `tag` of at most `max_bytes` payload bytes.
    pub fn new(tag: Tag, max_bytes: usize) -> Self {
        Self {
            tag,
            chunks: BTreeMap::new(),
            last: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// Bytes of chunk data held.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Number of chunks held.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Adds a chunk; returns the decoded payload once every chunk `0..=last` is present.
    pub fn add(&mut self, chunk: Chunk) -> Result<Option<Payload>, ChunkError> {
        if chunk.last {
            match self.last {
                Some(l) if l != chunk.id => return Err(ChunkError::ConflictingLast),
                _ => self.last = Some(chunk.id),
            }
        }
        if let Some(last) = self.last {
            if let Some((&max_id, _)) = self.chunks.last_key_value() {
                if max_id > last {
                    return Err(ChunkError::AfterLast { id: max_id, last });
                }
            }
            if chunk.id > last {
                return Err(ChunkError::AfterLast { id: chunk.id, last });
            }
        }
        let added = chunk.data.len();
        let replaced = self.chunks.get(&chunk.id).map_or(0, Vec::len);
        let total = self.bytes - replaced + added;
        if total > self.max_bytes {
            return Err(ChunkError::TooLarge(self.max_bytes));
        }
        self.bytes = total;
        self.chunks.insert(chunk.id, chunk.data);
        match self.last {
            Some(last) if self.chunks.len() == usize::from(last) + 1 => {
                let mut payload = Vec::with_capacity(self.bytes);
                for data in self.chunks.values() {
                    payload.extend_from_slice(data);
                }
                Ok(Some(Payload::decode(self.tag, &payload)?))
            }
            _ => Ok(None),
        }
    }
}
