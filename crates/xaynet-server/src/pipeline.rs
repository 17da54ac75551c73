//! The message pipeline (SPEC §5.6): open → length checks → phase filter → signature →
//! round key → parse → task eligibility. Pure CPU work on one message, run off the async
//! reactor; multipart reassembly happens in the coordinator, which owns the buffers.

use xaynet_core::crypto::{EncryptKeyPair, PublicSigningKey};
use xaynet_core::eligibility::{verify_sum_task, verify_update_task};
use xaynet_core::message::{Chunk, DecodeError, Message, MessageBuffer, Payload, Tag};
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

/// Runs the pipeline on a sealed message body.
pub fn process(sealed: &[u8], ctx: &RoundContext) -> Result<Processed, PipelineError> {
    let plain = ctx.keys.open(sealed).map_err(|_| PipelineError::Decrypt)?;
    let buf = MessageBuffer::new(&plain).map_err(PipelineError::Decode)?;
    if tag_phase(buf.tag()) != ctx.phase {
        return Err(PipelineError::WrongPhase(buf.tag(), ctx.phase.name()));
    }
    buf.verify_signature()
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
