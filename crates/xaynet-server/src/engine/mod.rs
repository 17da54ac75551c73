//! The round engine: the coordinator's PET state machine, with no IO inside (SPEC §1.4, §1.7).
//!
//! The engine takes events — a validated request, the current time in milliseconds, a random
//! generator for new round keys — and returns what happened: a [`Verdict`] for the sender and
//! the [`Change`]s that must be made durable before the sender is told. Time only moves when
//! the caller says so, so tests drive whole rounds with a simulated clock.
//!
//! Phases: `Sum → Update → Sum2 → Unmask → (next round)`, and `Failure → (next round)` on a
//! phase timeout or an unmasking error. The `Idle` step of the reference (new keys, new seed)
//! happens inside [`Engine::start_round`] and takes no time.

mod settings;

pub use settings::{PetSettings, PhaseSettings, SettingsError};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rand_core::CryptoRngCore;
use xaynet_core::crypto::{sha256, EncryptKeyPair, PublicEncryptKey, PublicSigningKey};
use xaynet_core::eligibility::RoundSeed;
use xaynet_core::mask::{Aggregation, AggregationError, MaskObject, UnmaskError, UnmaskedModel};
use xaynet_core::message::LocalSeedDict;
use xaynet_core::{RoundParameters, SeedDict, SumDict, UpdateSeedDict};

/// The coordinator's phases, with the reference's numeric ids (used in metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Between rounds (new keys and seed); takes no time here.
    Idle = 0,
    /// Summers publish ephemeral keys.
    Sum = 1,
    /// Updaters send masked models.
    Update = 2,
    /// Summers send the aggregated mask.
    Sum2 = 3,
    /// The coordinator unmasks.
    Unmask = 4,
    /// The round failed.
    Failure = 5,
    /// The coordinator is stopping.
    Shutdown = 6,
}

impl Phase {
    /// Decodes a phase id.
    pub fn from_id(id: u8) -> Option<Phase> {
        [
            Phase::Idle,
            Phase::Sum,
            Phase::Update,
            Phase::Sum2,
            Phase::Unmask,
            Phase::Failure,
            Phase::Shutdown,
        ]
        .get(id as usize)
        .copied()
    }

    /// The phase's name in logs, metrics and `/status`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Sum => "sum",
            Phase::Update => "update",
            Phase::Sum2 => "sum2",
            Phase::Unmask => "unmask",
            Phase::Failure => "failure",
            Phase::Shutdown => "shutdown",
        }
    }
}

/// Everything that identifies a round and where it stands.
#[derive(Clone, Debug)]
pub struct RoundRecord {
    /// Round number, from 1.
    pub round_id: u64,
    /// The round's key pair (the secret opens the round's messages).
    pub keys: EncryptKeyPair,
    /// The round parameters as published.
    pub params: RoundParameters,
    /// The current phase.
    pub phase: Phase,
    /// When the current phase started (ms since the UNIX epoch).
    pub phase_start_ms: u64,
}

/// A request that passed the message pipeline (decrypted, signed, eligible).
#[derive(Clone, Debug)]
pub enum Request {
    /// A summer's ephemeral key.
    Sum {
        /// Sender.
        pk: PublicSigningKey,
        /// Its ephemeral key.
        ephm_pk: PublicEncryptKey,
    },
    /// An updater's masked model and seeds.
    Update {
        /// Sender.
        pk: PublicSigningKey,
        /// Its seeds sealed to every summer.
        local_seed_dict: LocalSeedDict,
        /// Its masked model.
        masked_model: MaskObject,
    },
    /// A summer's aggregated mask.
    Sum2 {
        /// Sender.
        pk: PublicSigningKey,
        /// The mask.
        model_mask: MaskObject,
    },
}

impl Request {
    /// The phase the request belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            Request::Sum { .. } => Phase::Sum,
            Request::Update { .. } => Phase::Update,
            Request::Sum2 { .. } => Phase::Sum2,
        }
    }

    /// The sender.
    pub fn pk(&self) -> PublicSigningKey {
        match self {
            Request::Sum { pk, .. } | Request::Update { pk, .. } | Request::Sum2 { pk, .. } => *pk,
        }
    }
}

/// Why a request was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Made for another round's key.
    #[error("message is for another round")]
    WrongRound,
    /// Not the current phase's message type.
    #[error("message is for the {0} phase, the round is in another phase")]
    WrongPhase(&'static str),
    /// The sender already took part in this phase.
    #[error("participant already sent this round's message")]
    Duplicate,
    /// An Update whose seed dictionary does not name exactly the round's summers.
    #[error("local seed dictionary does not match the sum dictionary")]
    SeedDictMismatch,
    /// A Sum2 from a participant that is not in the sum dictionary.
    #[error("sender is not a summer of this round")]
    NotASummer,
    /// A masked model or mask that does not fit the round.
    #[error("invalid mask object: {0}")]
    InvalidMaskObject(AggregationError),
    /// Refused by the message pipeline (undecryptable, malformed, badly signed, not eligible).
    #[error("invalid message")]
    Invalid,
}

impl RejectReason {
    /// A short machine-readable label (metrics, JSON errors).
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::WrongRound => "wrong_round",
            RejectReason::WrongPhase(_) => "wrong_phase",
            RejectReason::Duplicate => "duplicate",
            RejectReason::SeedDictMismatch => "seed_dict_mismatch",
            RejectReason::NotASummer => "not_a_summer",
            RejectReason::InvalidMaskObject(_) => "invalid_mask_object",
            RejectReason::Invalid => "invalid",
        }
    }
}

/// The engine's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Taken into the round (durable once the returned changes are committed).
    Accepted,
    /// Refused as invalid.
    Rejected(RejectReason),
    /// Valid but not needed (the phase already has its maximum number of messages).
    Discarded,
}

/// A state change that must be made durable.
#[derive(Clone, Debug)]
pub enum Change {
    /// A new round started (all dictionaries, votes and the aggregate are cleared).
    NewRound(Box<RoundRecord>),
    /// The round moved to a new phase.
    Phase {
        /// The phase.
        phase: Phase,
        /// Its start time.
        start_ms: u64,
    },
    /// A summer joined.
    Summer {
        /// The summer.
        pk: PublicSigningKey,
        /// Its ephemeral key.
        ephm_pk: PublicEncryptKey,
    },
    /// An updater's seeds were accepted (its masked model is in the aggregate).
    Update {
        /// The updater.
        pk: PublicSigningKey,
        /// Its sealed seeds.
        local_seed_dict: LocalSeedDict,
    },
    /// A summer voted for a mask.
    Vote {
        /// The summer.
        pk: PublicSigningKey,
        /// SHA-256 of the mask's encoding.
        digest: [u8; 32],
        /// The mask.
        mask: Arc<MaskObject>,
    },
    /// A round produced a global model.
    GlobalModel(Arc<GlobalModel>),
    /// A round failed.
    RoundFailed {
        /// The round.
        round_id: u64,
        /// Why.
        reason: String,
    },
}

/// A round's result.
#[derive(Debug)]
pub struct GlobalModel {
    /// The round that produced it.
    pub round_id: u64,
    /// That round's seed (the reference names stored models `<round>_<hex seed>`).
    pub seed: RoundSeed,
    /// The exact weighted average.
    pub model: UnmaskedModel,
}

impl GlobalModel {
    /// The reference's object name for the model: `"<round_id>_<hex(seed)>"`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.round_id, hex::encode(self.seed.as_bytes()))
    }
}

/// Message counts of one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accepted messages.
    pub accepted: u64,
    /// Rejected messages.
    pub rejected: u64,
    /// Discarded messages.
    pub discarded: u64,
}

/// The state a restarted coordinator resumes from (what a store holds).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The round.
    pub round: RoundRecord,
    /// Its summers.
    pub sum_dict: SumDict,
    /// Its updaters' seeds, per summer.
    pub seed_dict: SeedDict,
    /// Its updaters.
    pub updaters: HashSet<PublicSigningKey>,
    /// The aggregate of the accepted masked models and their number.
    pub aggregate: Option<(MaskObject, u64)>,
    /// Summers that voted, with the digest they voted for.
    pub votes: HashMap<PublicSigningKey, [u8; 32]>,
    /// The masks voted for, by digest.
    pub masks: HashMap<[u8; 32], MaskObject>,
}

/// The PET round state machine.
pub struct Engine {
    settings: PetSettings,
    round: RoundRecord,
    sum_dict: SumDict,
    seed_dict: SeedDict,
    updaters: HashSet<PublicSigningKey>,
    aggregation: Aggregation,
    aggregate_dirty: bool,
    votes: HashMap<[u8; 32], (u64, Arc<MaskObject>)>,
    voters: HashSet<PublicSigningKey>,
    counts: BTreeMap<u8, Counts>,
    /// The ended round's id and its sum, update and sum2 counts (not persisted).
    previous_counts: Option<(u64, [Counts; 3])>,
    last_failure: Option<String>,
    /// Threads for adding a masked model to the aggregate.
    threads: usize,
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Engine {
    /// A fresh coordinator: starts round `last_round_id + 1` from `previous_seed` (the zero
    /// seed for a brand-new deployment).
    pub fn new(
        settings: PetSettings,
        last_round_id: u64,
        previous_seed: RoundSeed,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> (Engine, Vec<Change>) {
        let keys = EncryptKeyPair::generate(rng);
        let params = settings.round_parameters(keys.public, previous_seed);
        let aggregation = Aggregation::new(settings.mask, settings.model_length);
        let mut engine = Engine {
            round: RoundRecord {
                round_id: last_round_id,
                keys,
                params,
                phase: Phase::Idle,
                phase_start_ms: now_ms,
            },
            settings,
            sum_dict: SumDict::new(),
            seed_dict: SeedDict::new(),
            updaters: HashSet::new(),
            aggregation,
            aggregate_dirty: false,
            votes: HashMap::new(),
            voters: HashSet::new(),
            counts: BTreeMap::new(),
            previous_counts: None,
            last_failure: None,
            threads: cores(),
        };
        let changes = engine.start_round(now_ms, rng);
        (engine, changes)
    }

    /// Resumes a stored round. If its settings no longer match `settings`, or its phase
    /// deadline has passed, the round is abandoned and a new one starts.
    pub fn restore(
        settings: PetSettings,
        snapshot: Snapshot,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> (Engine, Vec<Change>) {
        let Snapshot {
            round,
            sum_dict,
            seed_dict,
            updaters,
            aggregate,
            votes,
            masks,
        } = snapshot;
        let same_settings = round.params.mask_config == settings.mask
            && round.params.model_length == settings.model_length as u64
            && round.params.sum == settings.sum_prob
            && round.params.update == settings.update_prob;
        let resumable = matches!(round.phase, Phase::Sum | Phase::Update | Phase::Sum2);
        let mut aggregation = Aggregation::new(settings.mask, settings.model_length);
        let mut aggregate_ok = true;
        if let Some((sum, n)) = aggregate {
            match Aggregation::from_parts(settings.mask, settings.model_length, sum, n) {
                Ok(a) => aggregation = a,
                Err(_) => aggregate_ok = false,
            }
        }
        let mut vote_counts: HashMap<[u8; 32], (u64, Arc<MaskObject>)> = HashMap::new();
        for digest in votes.values() {
            if let Some(mask) = masks.get(digest) {
                let entry = vote_counts
                    .entry(*digest)
                    .or_insert_with(|| (0, Arc::new(mask.clone())));
                entry.0 += 1;
            }
        }
        let mut engine = Engine {
            settings,
            round,
            sum_dict,
            seed_dict,
            updaters,
            aggregation,
            aggregate_dirty: false,
            votes: vote_counts,
            voters: votes.into_keys().collect(),
            counts: BTreeMap::new(),
            previous_counts: None,
            last_failure: None,
            threads: cores(),
        };
        for phase in [Phase::Sum, Phase::Update, Phase::Sum2] {
            engine.counts.entry(phase as u8).or_default().accepted = engine.accepted_in(phase);
        }
        if !same_settings || !resumable || !aggregate_ok {
            let reason = if !same_settings {
                "settings changed since the round started"
            } else if !aggregate_ok {
                "stored aggregate does not fit the round"
            } else {
                "round was not in a message phase"
            };
            engine.last_failure = Some(reason.to_string());
            let mut changes = vec![Change::RoundFailed {
                round_id: engine.round.round_id,
                reason: reason.into(),
            }];
            changes.extend(engine.start_round(now_ms, rng));
            return (engine, changes);
        }
        let changes = engine.tick(now_ms, rng);
        (engine, changes)
    }

    /// Ends the current round and starts the next one: new round id, new keys, new seed,
    /// empty dictionaries, phase Sum.
    pub fn start_round(&mut self, now_ms: u64, rng: &mut impl CryptoRngCore) -> Vec<Change> {
        self.previous_counts = Some((self.round.round_id, self.phase_counts()));
        let keys = EncryptKeyPair::generate(rng);
        let seed = self.round.params.seed.next(
            &keys.secret,
            self.settings.sum_prob,
            self.settings.update_prob,
        );
        let params = self.settings.round_parameters(keys.public, seed);
        self.round = RoundRecord {
            round_id: self.round.round_id + 1,
            keys,
            params,
            phase: Phase::Sum,
            phase_start_ms: now_ms,
        };
        self.sum_dict.clear();
        self.seed_dict.clear();
        self.updaters.clear();
        self.aggregation = Aggregation::new(self.settings.mask, self.settings.model_length);
        self.aggregate_dirty = false;
        self.votes.clear();
        self.voters.clear();
        self.counts.clear();
        vec![Change::NewRound(Box::new(self.round.clone()))]
    }

    /// The current round.
    pub fn round(&self) -> &RoundRecord {
        &self.round
    }

    /// The settings.
    pub fn settings(&self) -> &PetSettings {
        &self.settings
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.round.phase
    }

    /// The sum dictionary, once the Sum phase is over.
    pub fn published_sum_dict(&self) -> Option<&SumDict> {
        matches!(self.round.phase, Phase::Update | Phase::Sum2).then_some(&self.sum_dict)
    }

    /// A summer's update seed dictionary, during Sum2.
    pub fn published_seeds(&self, sum_pk: &PublicSigningKey) -> Option<&UpdateSeedDict> {
        (self.round.phase == Phase::Sum2)
            .then(|| self.seed_dict.get(sum_pk))
            .flatten()
    }

    /// The whole seed dictionary (for publishing per summer).
    pub fn seed_dict(&self) -> &SeedDict {
        &self.seed_dict
    }

    /// The running aggregate.
    pub fn aggregation(&self) -> &Aggregation {
        &self.aggregation
    }

    /// Whether the aggregate changed since [`Engine::take_aggregate_dirty`] was last called.
    pub fn take_aggregate_dirty(&mut self) -> bool {
        std::mem::take(&mut self.aggregate_dirty)
    }

    /// Message counts of `phase` in the current round.
    pub fn counts(&self, phase: Phase) -> Counts {
        self.counts.get(&(phase as u8)).copied().unwrap_or_default()
    }

    /// Message counts of the sum, update and sum2 phases of the current round.
    pub fn phase_counts(&self) -> [Counts; 3] {
        [Phase::Sum, Phase::Update, Phase::Sum2].map(|p| self.counts(p))
    }

    /// The round that ended last (its id and final phase counts), since this engine started.
    pub fn previous_counts(&self) -> Option<(u64, [Counts; 3])> {
        self.previous_counts
    }

    /// Why the last round failed, if one did.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Number of distinct masks voted for so far.
    pub fn distinct_masks(&self) -> usize {
        self.votes.len()
    }

    fn accepted_in(&self, phase: Phase) -> u64 {
        match phase {
            Phase::Sum => self.sum_dict.len() as u64,
            Phase::Update => self.updaters.len() as u64,
            Phase::Sum2 => self.voters.len() as u64,
            _ => 0,
        }
    }

    /// When the current phase's time rules next matter (ms since the epoch): the end of its
    /// minimum time, or its deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        let s = self.settings.phase(self.round.phase)?;
        let start = self.round.phase_start_ms;
        let min_end = start + s.min_time_ms;
        Some(if self.accepted_in(self.round.phase) >= s.min_count {
            min_end
        } else {
            start + s.max_time_ms
        })
    }

    /// The current phase's hard deadline (ms since the epoch).
    pub fn phase_deadline(&self) -> Option<u64> {
        let s = self.settings.phase(self.round.phase)?;
        Some(self.round.phase_start_ms + s.max_time_ms)
    }

    fn count(&mut self, verdict: &Verdict, phase: Phase) {
        let c = self.counts.entry(phase as u8).or_default();
        match verdict {
            Verdict::Accepted => c.accepted += 1,
            Verdict::Rejected(_) => c.rejected += 1,
            Verdict::Discarded => c.discarded += 1,
        }
    }

    /// Records a request that failed before reaching the engine (pipeline rejections).
    pub fn count_outside(&mut self, verdict: &Verdict) {
        let phase = self.round.phase;
        self.count(verdict, phase);
    }

    /// Handles one validated request made for the round key `round_pk`.
    pub fn handle(
        &mut self,
        round_pk: &PublicEncryptKey,
        request: Request,
    ) -> (Verdict, Vec<Change>) {
        let phase = self.round.phase;
        let (verdict, changes) = self.decide(round_pk, request);
        self.count(&verdict, phase);
        (verdict, changes)
    }

    fn decide(&mut self, round_pk: &PublicEncryptKey, request: Request) -> (Verdict, Vec<Change>) {
        let reject = |r| (Verdict::Rejected(r), Vec::new());
        if round_pk != &self.round.keys.public {
            return reject(RejectReason::WrongRound);
        }
        if request.phase() != self.round.phase {
            return reject(RejectReason::WrongPhase(request.phase().name()));
        }
        let Some(limits) = self.settings.phase(self.round.phase) else {
            return reject(RejectReason::WrongPhase(request.phase().name()));
        };
        if self.accepted_in(self.round.phase) >= limits.max_count {
            return (Verdict::Discarded, Vec::new());
        }
        match request {
            Request::Sum { pk, ephm_pk } => {
                if self.sum_dict.contains_key(&pk) {
                    return reject(RejectReason::Duplicate);
                }
                self.sum_dict.insert(pk, ephm_pk);
                (Verdict::Accepted, vec![Change::Summer { pk, ephm_pk }])
            }
            Request::Update {
                pk,
                local_seed_dict,
                masked_model,
            } => {
                if self.updaters.contains(&pk) {
                    return reject(RejectReason::Duplicate);
                }
                if local_seed_dict.len() != self.sum_dict.len()
                    || !local_seed_dict
                        .keys()
                        .all(|k| self.sum_dict.contains_key(k))
                {
                    return reject(RejectReason::SeedDictMismatch);
                }
                if let Err(e) = self.aggregation.validate_aggregation(&masked_model) {
                    return reject(RejectReason::InvalidMaskObject(e));
                }
                // Long models are added on all cores: aggregation is not serialised on one.
                self.aggregation
                    .add_unchecked_par(masked_model, self.threads);
                self.aggregate_dirty = true;
                self.updaters.insert(pk);
                for (sum_pk, seed) in &local_seed_dict {
                    self.seed_dict.entry(*sum_pk).or_default().insert(pk, *seed);
                }
                (
                    Verdict::Accepted,
                    vec![Change::Update {
                        pk,
                        local_seed_dict,
                    }],
                )
            }
            Request::Sum2 { pk, model_mask } => {
                if !self.sum_dict.contains_key(&pk) {
                    return reject(RejectReason::NotASummer);
                }
                if self.voters.contains(&pk) {
                    return reject(RejectReason::Duplicate);
                }
                if let Err(e) = self.aggregation.validate_unmasking(&model_mask) {
                    let e = match e {
                        UnmaskError::InvalidMask(e) => e,
                        _ => AggregationError::InvalidObject,
                    };
                    return reject(RejectReason::InvalidMaskObject(e));
                }
                let digest = sha256(&model_mask.to_bytes());
                let mask = Arc::new(model_mask);
                let entry = self
                    .votes
                    .entry(digest)
                    .or_insert_with(|| (0, mask.clone()));
                entry.0 += 1;
                self.voters.insert(pk);
                (Verdict::Accepted, vec![Change::Vote { pk, digest, mask }])
            }
        }
    }

    /// Applies the time and count rules at `now_ms`: ends phases, unmasks, fails rounds and
    /// starts new ones. Call it after every request and whenever [`Engine::next_deadline`]
    /// passes.
    pub fn tick(&mut self, now_ms: u64, rng: &mut impl CryptoRngCore) -> Vec<Change> {
        let mut changes = Vec::new();
        loop {
            let phase = self.round.phase;
            let Some(s) = self.settings.phase(phase) else {
                break;
            };
            let elapsed = now_ms.saturating_sub(self.round.phase_start_ms);
            let accepted = self.accepted_in(phase);
            if elapsed >= s.min_time_ms && accepted >= s.min_count {
                changes.extend(self.end_phase(now_ms, rng));
            } else if elapsed >= s.max_time_ms {
                changes.extend(self.fail(
                    format!(
                        "{} phase timed out with {accepted} of at least {} messages",
                        phase.name(),
                        s.min_count
                    ),
                    now_ms,
                    rng,
                ));
            } else {
                break;
            }
        }
        changes
    }

    fn set_phase(&mut self, phase: Phase, now_ms: u64) -> Change {
        self.round.phase = phase;
        self.round.phase_start_ms = now_ms;
        Change::Phase {
            phase,
            start_ms: now_ms,
        }
    }

    fn end_phase(&mut self, now_ms: u64, rng: &mut impl CryptoRngCore) -> Vec<Change> {
        match self.round.phase {
            Phase::Sum => vec![self.set_phase(Phase::Update, now_ms)],
            Phase::Update => vec![self.set_phase(Phase::Sum2, now_ms)],
            Phase::Sum2 => self.unmask(now_ms, rng),
            _ => Vec::new(),
        }
    }

    fn fail(&mut self, reason: String, now_ms: u64, rng: &mut impl CryptoRngCore) -> Vec<Change> {
        let mut changes = vec![Change::RoundFailed {
            round_id: self.round.round_id,
            reason: reason.clone(),
        }];
        self.last_failure = Some(reason);
        changes.extend(self.start_round(now_ms, rng));
        changes
    }

    fn unmask(&mut self, now_ms: u64, rng: &mut impl CryptoRngCore) -> Vec<Change> {
        let mut ranked: Vec<&(u64, Arc<MaskObject>)> = self.votes.values().collect();
        ranked.sort_by_key(|e| std::cmp::Reverse(e.0));
        let best = match ranked.as_slice() {
            [] => return self.fail("no mask was submitted".into(), now_ms, rng),
            [first, second, ..] if first.0 == second.0 => {
                return self.fail(
                    format!("ambiguous masks: two masks have {} votes each", first.0),
                    now_ms,
                    rng,
                )
            }
            [first, ..] => first.1.clone(),
        };
        match self.aggregation.unmask(&best) {
            Ok(model) => {
                let global = Arc::new(GlobalModel {
                    round_id: self.round.round_id,
                    seed: self.round.params.seed,
                    model,
                });
                self.last_failure = None;
                let mut changes = vec![Change::GlobalModel(global)];
                changes.extend(self.start_round(now_ms, rng));
                changes
            }
            Err(e) => self.fail(format!("unmasking failed: {e}"), now_ms, rng),
        }
    }
}

#[cfg(test)]
mod tests;
