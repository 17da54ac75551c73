//! The message pipeline (SPEC §5.6): open → length checks → phase filter → signature →
//! round key → parse → task eligibility. Pure CPU work on one message, run off the async
//! reactor; multipart reassembly happens in the coordinator, which owns the buffers.
//! Opening and hashing for the signature share one pass over the body's pieces.

use xaynet_core::crypto::{EncryptKeyPair, PublicSigningKey, SEALBYTES};
use xaynet_core::eligibility::{verify_sum_task, verify_update_task};
use xaynet_core::message::{
    Chunk, DecodeError, Header, Message, MessageBuffer, OpenedMessage, Payload,
    SealedMessageReader, Tag,
};
use xaynet_core::RoundParameters;

use crate::engine::{Phase, Request};

/// What the pipeline needs to know about the current round.
#[derive(Clone, Debug)]
pub struct RoundContext {
    /// The round's key pair.
    pub keys: EncryptKeyPair,
    /// The round's parameters.
    pub params: RoundParameters,
    /// The phase when the message arrived.
    pub phase: Phase,
}

/// Why the pipeline refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// Not a sealed box for the current round key (wrong round, or garbage).
    #[error("message could not be decrypted with the current round key")]
    Decrypt,
    /// A malformed message.
    #[error("malformed message: {0}")]
    Decode(DecodeError),
    /// The message type does not match the phase.
    #[error("{0:?} message during the {1} phase")]
    WrongPhase(Tag, &'static str),
    /// The signature over the message is invalid.
    #[error("invalid message signature")]
    Signature,
    /// The header names another round's key.
    #[error("message is for another round")]
    WrongRound,
    /// The sender is not eligible for the task its message claims.
    #[error("sender is not eligible for the {0} task")]
    NotEligible(&'static str),
}

impl PipelineError {
    /// A short machine-readable label (metrics).
    pub fn label(&self) -> &'static str {
        match self {
            PipelineError::Decrypt => "decrypt",
            PipelineError::Decode(_) => "malformed",
            PipelineError::WrongPhase(..) => "wrong_phase",
            PipelineError::Signature => "signature",
            PipelineError::WrongRound => "wrong_round",
            PipelineError::NotEligible(_) => "not_eligible",
        }
    }
}

/// A message that passed the pipeline.
#[derive(Debug)]
pub enum Processed {
    /// A complete, eligible request.
    Request(Request),
    /// One chunk of a multipart message (eligibility is checked after reassembly).
    Chunk {
        /// Sender.
        pk: PublicSigningKey,
        /// The carried message's type.
        tag: Tag,
        /// The chunk.
        chunk: Chunk,
    },
}

fn tag_phase(tag: Tag) -> Phase {
    match tag {
        Tag::Sum => Phase::Sum,
        Tag::Update => Phase::Update,
        Tag::Sum2 => Phase::Sum2,
    }
}

/// The pipeline over one message whose body arrives in pieces: feed each piece as it comes
/// ([`Ingest::update`]), then [`Ingest::finish`]. Opening and the signature check happen in one
/// pass (see [`SealedMessageReader`]); a header that names another phase or round key stops
/// the work early. The plaintext goes into a buffer the caller hands in and gets back.
#[derive(Debug)]
pub struct Ingest<'c> {
    ctx: &'c RoundContext,
    reader: SealedMessageReader<'c>,
    header_checked: bool,
}

impl<'c> Ingest<'c> {
    /// Starts on a message for the round `ctx`, writing its plaintext into `buffer`, which
    /// is made room in for `expected` sealed bytes (the declared body length, if any).
    pub fn new(ctx: &'c RoundContext, mut buffer: Vec<u8>, expected: usize) -> Self {
        buffer.clear();
        buffer.reserve(expected.saturating_sub(SEALBYTES));
        Self {
            ctx,
            reader: SealedMessageReader::new(&ctx.keys, buffer),
            header_checked: false,
        }
    }

    /// Feeds the next piece of the sealed body. `Err` means the message is refused already;
    /// the rest of it need not be fed.
    pub fn update(&mut self, piece: &[u8]) -> Result<(), PipelineError> {
        self.reader.update(piece);
        if !self.header_checked {
            if let Some(header) = self.reader.header() {
                self.header_checked = true;
                // Unauthenticated, so only used to refuse sooner what would be refused anyway.
                early_check(&header, self.ctx)?;
            }
        }
        Ok(())
    }

    /// Stops here (after a refusal by [`Ingest::update`]) and hands back the buffer.
    pub fn into_buffer(self) -> Vec<u8> {
        self.reader.into_buffer()
    }

    /// Completes the pipeline; the plaintext buffer comes back for reuse when the message
    /// opened.
    pub fn finish(self) -> (Result<Processed, PipelineError>, Option<Vec<u8>>) {
        let Ok(opened) = self.reader.finish() else {
            return (Err(PipelineError::Decrypt), None);
        };
        let result = check_and_parse(&opened, self.ctx);
        (result, Some(opened.into_buffer()))
    }
}

fn early_check(header: &Header<'_>, ctx: &RoundContext) -> Result<(), PipelineError> {
    if let Ok(tag) = header.tag() {
        if tag_phase(tag) != ctx.phase {
            return Err(PipelineError::WrongPhase(tag, ctx.phase.name()));
        }
    }
    if header.coordinator_pk() != ctx.keys.public {
        return Err(PipelineError::WrongRound);
    }
    Ok(())
}

fn check_and_parse(opened: &OpenedMessage, ctx: &RoundContext) -> Result<Processed, PipelineError> {
    let buf = MessageBuffer::new(opened.bytes()).map_err(PipelineError::Decode)?;
    if tag_phase(buf.tag()) != ctx.phase {
        return Err(PipelineError::WrongPhase(buf.tag(), ctx.phase.name()));
    }
    opened
        .verify_signature()
        .map_err(|_| PipelineError::Signature)?;
    if buf.coordinator_pk() != ctx.keys.public {
        return Err(PipelineError::WrongRound);
    }
    let message = Message::from_buffer(&buf).map_err(PipelineError::Decode)?;
    match message.payload {
        Payload::Chunk(chunk) => Ok(Processed::Chunk {
            pk: message.participant_pk,
            tag: message.tag,
            chunk,
        }),
        payload => to_request(message.participant_pk, payload, &ctx.params).map(Processed::Request),
    }
}

/// Plaintext buffers kept for reuse, so that large messages do not fault in fresh memory
/// every time. Bounded in number and in the capacity of a kept buffer.
#[derive(Debug)]
pub struct BufferPool {
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
    keep: usize,
    max_capacity: usize,
}

impl BufferPool {
    /// A pool keeping at most `keep` buffers of at most `max_capacity` bytes each.
    pub fn new(keep: usize, max_capacity: usize) -> Self {
        Self {
            buffers: std::sync::Mutex::new(Vec::new()),
            keep,
            max_capacity,
        }
    }

    /// A buffer from the pool, or a new empty one.
    pub fn take(&self) -> Vec<u8> {
        self.buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default()
    }

    /// Returns a buffer to the pool (dropped if the pool is full or the buffer too large).
    pub fn give(&self, buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > self.max_capacity {
            return;
        }
        if let Ok(mut b) = self.buffers.lock() {
            if b.len() < self.keep {
                b.push(buffer);
            }
        }
    }
}

/// Checks eligibility (SPEC §5.6 step 8) and turns a complete payload into a request.
pub fn to_request(
    pk: PublicSigningKey,
    payload: Payload,
    params: &RoundParameters,
) -> Result<Request, PipelineError> {
    let seed = &params.seed;
    match payload {
        Payload::Sum(s) => {
            if !verify_sum_task(&pk, seed, &s.sum_signature, params.sum) {
                return Err(PipelineError::NotEligible("sum"));
            }
            Ok(Request::Sum {
                pk,
                ephm_pk: s.ephm_pk,
            })
        }
        Payload::Update(u) => {
            if !verify_update_task(
                &pk,
                seed,
                &u.sum_signature,
                &u.update_signature,
                params.sum,
                params.update,
            ) {
                return Err(PipelineError::NotEligible("update"));
            }
            Ok(Request::Update {
                pk,
                local_seed_dict: u.local_seed_dict,
                masked_model: u.masked_model,
            })
        }
        Payload::Sum2(s) => {
            if !verify_sum_task(&pk, seed, &s.sum_signature, params.sum) {
                return Err(PipelineError::NotEligible("sum"));
            }
            Ok(Request::Sum2 {
                pk,
                model_mask: s.model_mask,
            })
        }
        Payload::Chunk(_) => Err(PipelineError::Decode(DecodeError::InvalidTag(0))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use xaynet_core::crypto::{OsRng, SigningKeyPair};
    use xaynet_core::message::Sum;

    fn context(phase: Phase) -> RoundContext {
        let keys = EncryptKeyPair::generate(&mut OsRng);
        RoundContext {
            params: RoundParameters {
                pk: keys.public,
                sum: 1.0,
                update: 1.0,
                seed: xaynet_core::RoundSeed([3; 32]),
                mask_config: Default::default(),
                model_length: 4,
            },
            keys,
            phase,
        }
    }

    /// A sealed Sum message with `padding` extra bytes in the (unchecked) tail of the box.
    fn sum_message(ctx: &RoundContext, padding: usize) -> Vec<u8> {
        let keys = SigningKeyPair::from_seed(&[4; 32]);
        let sigs = xaynet_core::eligibility::TaskSignatures::sign(&keys.secret, &ctx.params.seed);
        let mut signed = Message {
            participant_pk: keys.public,
            coordinator_pk: ctx.keys.public,
            tag: Tag::Sum,
            payload: Payload::Sum(Sum {
                sum_signature: sigs.sum,
                ephm_pk: EncryptKeyPair::generate(&mut OsRng).public,
            }),
        }
        .to_signed_bytes(&keys.secret);
        signed.extend(vec![0u8; padding]);
        ctx.keys.public.seal(&signed, &mut OsRng)
    }

    fn run(ctx: &RoundContext, sealed: &[u8], piece: usize) -> Result<Processed, PipelineError> {
        let mut ingest = Ingest::new(ctx, Vec::new(), sealed.len());
        for p in sealed.chunks(piece) {
            ingest.update(p)?;
        }
        ingest.finish().0
    }

    #[test]
    fn pieces_of_any_size_give_the_same_request() {
        let ctx = context(Phase::Sum);
        let sealed = sum_message(&ctx, 0);
        for piece in [1, 7, 48, 136, 1000, sealed.len()] {
            assert!(
                matches!(
                    run(&ctx, &sealed, piece),
                    Ok(Processed::Request(Request::Sum { .. }))
                ),
                "piece {piece}"
            );
        }
        let mut tampered = sealed.clone();
        tampered[60] ^= 1;
        assert_eq!(run(&ctx, &tampered, 9).unwrap_err(), PipelineError::Decrypt);
        assert_eq!(
            run(&ctx, &sealed[..100], 9).unwrap_err(),
            PipelineError::Decrypt
        );
    }

    #[test]
    fn wrong_phase_and_round_are_refused_once_the_header_is_in() {
        let ctx = context(Phase::Update);
        let sealed = sum_message(&ctx, 100_000);
        let mut ingest = Ingest::new(&ctx, Vec::new(), 0);
        // The header (136 bytes of plaintext) is in after 48 + 136 sealed bytes.
        assert!(ingest.update(&sealed[..183]).is_ok());
        assert_eq!(
            ingest.update(&sealed[183..200]).unwrap_err(),
            PipelineError::WrongPhase(Tag::Sum, "update")
        );
        // Sealed to the round key, but naming another round key in its header.
        let sum_ctx = context(Phase::Sum);
        let other = RoundContext {
            keys: EncryptKeyPair::generate(&mut OsRng),
            ..sum_ctx.clone()
        };
        let signed = other.keys.open(&sum_message(&other, 0)).unwrap();
        let resealed = sum_ctx.keys.public.seal(&signed, &mut OsRng);
        assert_eq!(
            run(&sum_ctx, &resealed, 64).unwrap_err(),
            PipelineError::WrongRound
        );
    }

    #[test]
    fn buffer_pool_is_bounded() {
        let pool = BufferPool::new(2, 1000);
        pool.give(Vec::with_capacity(10));
        pool.give(Vec::with_capacity(20));
        pool.give(Vec::with_capacity(30));
        pool.give(Vec::with_capacity(5000));
        pool.give(Vec::new());
        let (a, b, c) = (pool.take(), pool.take(), pool.take());
        assert_eq!((a.capacity(), b.capacity(), c.capacity()), (20, 10, 0));
    }
}
