//! Durable coordinator state: one storage contract, several back ends.
//!
//! Everything a restarted coordinator needs goes through [`Store::commit`]: a batch of
//! [`Op`]s applied atomically — all or nothing — with the reference's consistency checks
//! (SPEC §5.4) enforced by the store itself. The engine commits a batch before any of its
//! senders is told "accepted", so an acknowledged message is never lost.
//!
//! Back ends: [`embedded::EmbeddedStore`] (the default; one `redb` file, no service) and
//! `redis` (for production). Both pass [`conformance::run`].

pub mod conformance;
pub mod embedded;
pub mod redis;

use std::collections::{HashMap, HashSet};
use std::future::Future;

use xaynet_core::crypto::{EncryptKeyPair, PublicEncryptKey, PublicSigningKey, SecretEncryptKey};
use xaynet_core::mask::MaskObject;
use xaynet_core::message::LocalSeedDict;
use xaynet_core::{RoundParameters, SeedDict, SumDict};

use crate::engine::{Phase, RoundRecord, Snapshot};

/// One atomic storage operation.
#[derive(Clone, Debug)]
pub enum Op {
    /// Start a round: clears the previous round's dictionaries, votes and aggregate and
    /// records the new round.
    NewRound(Box<RoundRecord>),
    /// Record the current round's phase.
    SetPhase {
        /// The phase.
        phase: Phase,
        /// When it started (ms since the epoch).
        start_ms: u64,
    },
    /// Add a summer. Fails if it is already there.
    AddSummer {
        /// The summer.
        pk: PublicSigningKey,
        /// Its ephemeral key.
        ephm_pk: PublicEncryptKey,
    },
    /// Add an updater's seeds. Fails if the dictionary does not name exactly the stored
    /// summers, or if the updater already submitted.
    AddUpdate {
        /// The updater.
        pk: PublicSigningKey,
        /// Its seeds.
        local_seed_dict: LocalSeedDict,
    },
    /// Record a summer's mask vote. Fails if the sender is not a summer or already voted.
    AddVote {
        /// The summer.
        pk: PublicSigningKey,
        /// SHA-256 of the mask's encoding.
        digest: [u8; 32],
        /// The mask's encoding (stored once per digest).
        mask: Vec<u8>,
    },
    /// Replace the running aggregate (encoded `MaskObject`) and its model count.
    SetAggregate {
        /// The aggregate's encoding.
        bytes: Vec<u8>,
        /// Number of models in it.
        nb_models: u64,
    },
    /// Record the id of the latest global model (its body lives in the model store).
    SetLatestModel {
        /// The model's id.
        id: String,
    },
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A consistency check of SPEC §5.4 failed; nothing of the batch was written.
    #[error("storage check failed: {0}")]
    Check(CheckError),
    /// The back end failed (IO, connection, corruption).
    #[error("storage back end error: {0}")]
    Backend(String),
}

/// The consistency checks the store enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// `AddSummer` for a summer already present.
    #[error("summer already registered")]
    SummerExists,
    /// `AddUpdate` whose entry count differs from the number of summers.
    #[error("seed dictionary has the wrong number of entries")]
    SeedDictLength,
    /// `AddUpdate` naming a key that is not a summer.
    #[error("seed dictionary names an unknown summer")]
    UnknownSummer,
    /// `AddUpdate` from an updater that already submitted.
    #[error("updater already submitted")]
    UpdateExists,
    /// `AddVote` from a key that is not a summer.
    #[error("vote from a participant that is not a summer")]
    NotASummer,
    /// `AddVote` from a summer that already voted.
    #[error("summer already voted")]
    VoteExists,
    /// An operation on round data before any round was recorded.
    #[error("no round has been recorded")]
    NoRound,
}

/// What a store holds.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The round in progress, with its dictionaries, aggregate and votes.
    pub snapshot: Option<Snapshot>,
    /// The id of the latest global model.
    pub latest_model_id: Option<String>,
}

/// The storage contract of the coordinator.
pub trait Store: Send + Sync + 'static {
    /// Applies `ops` atomically, in order, checking each (see [`Op`]).
    fn commit(&self, ops: Vec<Op>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads everything back.
    fn load(&self) -> impl Future<Output = Result<Loaded, StoreError>> + Send;
    /// Whether the back end answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Encodes a round record: `round_id u64 LE ‖ phase u8 ‖ phase_start u64 LE ‖ secret (32) ‖
/// bincode(RoundParameters)`.
pub fn encode_round(r: &RoundRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(49 + 136);
    out.extend_from_slice(&r.round_id.to_le_bytes());
    out.push(r.phase as u8);
    out.extend_from_slice(&r.phase_start_ms.to_le_bytes());
    out.extend_from_slice(&*r.keys.secret.to_bytes());
    out.extend_from_slice(&r.params.to_bincode());
    out
}

/// Decodes [`encode_round`]'s output.
pub fn decode_round(bytes: &[u8]) -> Result<RoundRecord, StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("corrupt round record: {what}"));
    if bytes.len() < 49 {
        return Err(bad("too short"));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let round_id = u64_at(0);
    let phase = Phase::from_id(bytes[8]).ok_or_else(|| bad("phase"))?;
    let phase_start_ms = u64_at(9);
    let secret = SecretEncryptKey::from_slice(&bytes[17..49]).map_err(|_| bad("key"))?;
    let params = RoundParameters::from_bincode(&bytes[49..]).map_err(|e| bad(&e.to_string()))?;
    let keys = EncryptKeyPair::from_secret(secret);
    if keys.public != params.pk {
        return Err(bad("key does not match the parameters"));
    }
    Ok(RoundRecord {
        round_id,
        keys,
        params,
        phase,
        phase_start_ms,
    })
}

/// A stored key and value, as raw bytes.
pub type Row = (Vec<u8>, Vec<u8>);

/// The rows of a snapshot as a back end reads them (raw bytes), checked, decoded and
/// assembled in one place.
#[derive(Default)]
pub struct RawSnapshot {
    /// `encode_round` bytes.
    pub round: Option<Vec<u8>>,
    /// Summer → ephemeral key.
    pub summers: Vec<Row>,
    /// `summer ‖ updater` → encrypted seed.
    pub seeds: Vec<Row>,
    /// Updaters.
    pub updaters: Vec<Vec<u8>>,
    /// Aggregate bytes and count (`u64` little-endian).
    pub aggregate: Option<(Vec<u8>, Vec<u8>)>,
    /// Summer → digest voted for.
    pub votes: Vec<Row>,
    /// Digest → mask bytes.
    pub masks: Vec<Row>,
    /// Latest global model id.
    pub latest_model_id: Option<String>,
}

impl RawSnapshot {
    /// Decodes and assembles the parts.
    pub fn decode(self) -> Result<Loaded, StoreError> {
        let bad = |what: String| StoreError::Backend(format!("corrupt stored state: {what}"));
        let Some(round) = self.round else {
            return Ok(Loaded {
                snapshot: None,
                latest_model_id: self.latest_model_id,
            });
        };
        let round = decode_round(&round)?;
        let key = |b: &[u8]| {
            <[u8; 32]>::try_from(b).map_err(|_| bad(format!("key of {} bytes", b.len())))
        };
        let mut sum_dict = SumDict::new();
        for (k, v) in self.summers {
            sum_dict.insert(
                PublicSigningKey::from(key(&k)?),
                PublicEncryptKey::from(key(&v)?),
            );
        }
        let mut seed_dict = SeedDict::new();
        for (k, seed) in self.seeds {
            if k.len() != 64 {
                return Err(bad(format!("seed key of {} bytes", k.len())));
            }
            let seed = xaynet_core::mask::EncryptedMaskSeed::from_slice(&seed)
                .map_err(|e| bad(e.to_string()))?;
            seed_dict
                .entry(PublicSigningKey::from(key(&k[..32])?))
                .or_default()
                .insert(PublicSigningKey::from(key(&k[32..])?), seed);
        }
        let mut updaters = HashSet::new();
        for u in self.updaters {
            updaters.insert(PublicSigningKey::from(key(&u)?));
        }
        let aggregate = match self.aggregate {
            Some((bytes, n)) => {
                let n =
                    <[u8; 8]>::try_from(n.as_slice()).map_err(|_| bad("aggregate count".into()))?;
                Some((
                    MaskObject::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?,
                    u64::from_le_bytes(n),
                ))
            }
            None => None,
        };
        let mut votes = HashMap::new();
        for (k, d) in self.votes {
            votes.insert(PublicSigningKey::from(key(&k)?), key(&d)?);
        }
        let mut masks = HashMap::new();
        for (d, bytes) in self.masks {
            masks.insert(
                key(&d)?,
                MaskObject::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?,
            );
        }
        Ok(Loaded {
            snapshot: Some(Snapshot {
                round,
                sum_dict,
                seed_dict,
                updaters,
                aggregate,
                votes,
                masks,
            }),
            latest_model_id: self.latest_model_id,
        })
    }
}

/// The engine's changes as store operations; the aggregate is added by the caller.
pub fn ops_of(changes: &[crate::engine::Change]) -> Vec<Op> {
    use crate::engine::Change;
    changes
        .iter()
        .filter_map(|c| match c {
            Change::NewRound(r) => Some(Op::NewRound(r.clone())),
            Change::Phase { phase, start_ms } => Some(Op::SetPhase {
                phase: *phase,
                start_ms: *start_ms,
            }),
            Change::Summer { pk, ephm_pk } => Some(Op::AddSummer {
                pk: *pk,
                ephm_pk: *ephm_pk,
            }),
            Change::Update {
                pk,
                local_seed_dict,
            } => Some(Op::AddUpdate {
                pk: *pk,
                local_seed_dict: local_seed_dict.clone(),
            }),
            Change::Vote { pk, digest, mask } => Some(Op::AddVote {
                pk: *pk,
                digest: *digest,
                mask: mask.to_bytes(),
            }),
            Change::GlobalModel(g) => Some(Op::SetLatestModel { id: g.id() }),
            Change::RoundFailed { .. } => None,
        })
        .collect()
}
