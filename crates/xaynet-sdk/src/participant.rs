//! The sans-IO participant: a state machine that says which request to make next and takes the
//! answers, the current time and a source of randomness as inputs (SPEC §6.3).
//!
//! The driver loop is always the same:
//!
//! ```text
//! loop {
//!     match participant.poll(now) {
//!         Action::Wait(until)      => sleep until `until`,
//!         Action::FetchParams      => answer with Response::Params(GET /params),
//!         Action::FetchSums        => answer with Response::Sums(GET /sums),
//!         Action::FetchSeeds(pk)   => answer with Response::Seeds(GET /seeds?pk=…),
//!         Action::LoadModel        => answer with Response::Model(the app's local model),
//!         Action::Send(body)       => answer with Response::Sent(POST /message body),
//!     }
//!     participant.handle(response, now, &mut rng);
//!     while let Some(notice) = participant.next_notice() { tell the app }
//! }
//! ```
//!
//! [`crate::runner`] is this loop over HTTP with tokio; the bindings write it in their host's
//! terms (the browser's `fetch`, a phone's scheduler).

use std::collections::VecDeque;

use bytes::Bytes;
use rand_core::CryptoRngCore;
use xaynet_core::crypto::{EncryptKeyPair, PublicSigningKey, SigningKeyPair};
use xaynet_core::eligibility::{Task, TaskSignatures};
use xaynet_core::mask::{Aggregation, Group, MaskSeed, Masker};
use xaynet_core::message::{encode, Message, Payload, Sum, Sum2, Tag, Update};
use xaynet_core::model::{Scalar, Weights};
use xaynet_core::{RoundParameters, SumDict, UpdateSeedDict};

use crate::settings::{Settings, SettingsError};

/// Milliseconds on the driver's monotonic clock (any origin; only differences matter).
pub type Millis = u64;

/// A local model owned by the participant, of one primitive type.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalModel {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// 64-bit integers.
    I64(Vec<i64>),
}

impl LocalModel {
    /// The weights, borrowed.
    pub fn weights(&self) -> Weights<'_> {
        match self {
            LocalModel::F32(v) => Weights::F32(v),
            LocalModel::F64(v) => Weights::F64(v),
            LocalModel::I32(v) => Weights::I32(v),
            LocalModel::I64(v) => Weights::I64(v),
        }
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.weights().len()
    }

    /// Whether the model has no weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the app hands over when the participant asks for its model ([`Action::LoadModel`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUpdate {
    /// The locally trained model.
    pub model: LocalModel,
    /// This update's aggregation weight (for FedAvg: proportional to the number of training
    /// samples, scaled into `[0, 1]`; see the crate docs). `None` uses [`Settings::scalar`].
    pub scalar: Option<f64>,
}

/// What the driver should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do before this time; call [`Participant::poll`] again then.
    Wait(Millis),
    /// `GET /params`; answer with [`Response::Params`].
    FetchParams,
    /// `GET /sums`; answer with [`Response::Sums`].
    FetchSums,
    /// `GET /seeds?pk=` with this key; answer with [`Response::Seeds`].
    FetchSeeds(PublicSigningKey),
    /// Ask the app for its local model; answer with [`Response::Model`].
    LoadModel,
    /// `POST /message` with this body; answer with [`Response::Sent`].
    Send(Bytes),
}

/// Why a request failed (transport errors, bad status codes, undecodable bodies). The
/// participant retries with backoff; the text is for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

/// The answer to an [`Action`].
#[derive(Clone, Debug)]
pub enum Response {
    /// The round parameters.
    Params(Result<RoundParameters, RequestError>),
    /// The sum dictionary; `None` while the coordinator has not published it (HTTP 204).
    Sums(Result<Option<SumDict>, RequestError>),
    /// This summer's seed dictionary; `None` while not published (HTTP 204).
    Seeds(Result<Option<UpdateSeedDict>, RequestError>),
    /// The app's local model; `None` if it is not ready yet (the participant asks again later).
    Model(Option<ModelUpdate>),
    /// Whether the POST succeeded.
    Sent(Result<(), RequestError>),
}

/// Something the app may want to know; drained with [`Participant::next_notice`].
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// The coordinator started a new round (its parameters changed).
    NewRound(RoundParameters),
    /// The task this participant drew for the new round.
    Task(Task),
    /// A whole message (all of its chunks) was delivered.
    Sent(Tag),
    /// As a summer: the updaters whose seeds it received, i.e. the updates the coordinator
    /// accepted this round.
    SeedsReceived(Vec<PublicSigningKey>),
    /// The participant gave up its task for this round; it waits for the next one.
    Abandoned(String),
    /// A request failed; it is retried at the given time.
    Retrying {
        /// What failed.
        error: RequestError,
        /// Consecutive failures so far.
        attempt: u32,
        /// When the next attempt is due.
        at: Millis,
    },
}

/// What the participant waits for or does within a round.
#[derive(Clone, Debug)]
pub(crate) enum Phase {
    /// No task in this round, or the task is done.
    Idle,
    /// Updater: waiting for the sum dictionary.
    AwaitSums,
    /// Updater: has the sum dictionary, waiting for the app's model.
    AwaitModel(SumDict),
    /// Summer: waiting for its seed dictionary.
    AwaitSeeds(EncryptKeyPair),
    /// Delivering the parts (chunks) of a message, in order.
    Sending {
        tag: Tag,
        parts: VecDeque<Bytes>,
        then: Then,
    },
}

/// Where a phase goes once its message is delivered.
#[derive(Clone, Debug)]
pub(crate) enum Then {
    Idle,
    AwaitSeeds(EncryptKeyPair),
}

/// A participant of the PET protocol. See the module docs for the driver loop.
///
/// `Debug` prints no key material.
pub struct Participant {
    pub(crate) keys: SigningKeyPair,
    pub(crate) settings: Settings,
    pub(crate) params: Option<RoundParameters>,
    /// The task drawn for the round of `params` (derived from them, not saved).
    pub(crate) task: Task,
    pub(crate) phase: Phase,
    /// Consecutive failed requests (for the backoff).
    pub(crate) failures: u32,
    /// Whether the next request must re-read `/params` (to notice a new round).
    pub(crate) params_due: bool,
    pub(crate) wake_at: Millis,
    pub(crate) notices: VecDeque<Notice>,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("public_key", &self.keys.public)
            .field("phase", &self.phase_name())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Participant {
    /// A participant with this key pair; it starts by reading the round parameters.
    pub fn new(keys: SigningKeyPair, settings: Settings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(Self {
            keys,
            settings,
            params: None,
            task: Task::None,
            phase: Phase::Idle,
            failures: 0,
            params_due: true,
            wake_at: 0,
            notices: VecDeque::new(),
        })
    }

    /// The participant's public key (its identity).
    pub fn public_key(&self) -> PublicSigningKey {
        self.keys.public
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The parameters of the round the participant is in, once read.
    pub fn round_params(&self) -> Option<&RoundParameters> {
        self.params.as_ref()
    }

    /// The task drawn for the current round (`Task::None` before the first round).
    pub fn task(&self) -> Task {
        self.task
    }

    /// A short name of the current phase (`idle`, `awaiting_sums`, `awaiting_model`,
    /// `awaiting_seeds`, `sending_sum`, `sending_update`, `sending_sum2`).
    pub fn phase_name(&self) -> &'static str {
        match &self.phase {
            Phase::Idle => "idle",
            Phase::AwaitSums => "awaiting_sums",
            Phase::AwaitModel(_) => "awaiting_model",
            Phase::AwaitSeeds(_) => "awaiting_seeds",
            Phase::Sending { tag: Tag::Sum, .. } => "sending_sum",
            Phase::Sending {
                tag: Tag::Update, ..
            } => "sending_update",
            Phase::Sending { tag: Tag::Sum2, .. } => "sending_sum2",
        }
    }

    /// Whether the participant has a task in progress in the current round (it is neither
    /// idle nor waiting for a new round).
    pub fn is_busy(&self) -> bool {
        !matches!(self.phase, Phase::Idle)
    }

    /// Message parts (chunks) still to deliver in the current phase (0 unless sending).
    pub fn parts_left(&self) -> usize {
        match &self.phase {
            Phase::Sending { parts, .. } => parts.len(),
            _ => 0,
        }
    }

    /// The next notice for the app, if any.
    pub fn next_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// What to do next at time `now`.
    pub fn poll(&mut self, now: Millis) -> Action {
        if now < self.wake_at {
            return Action::Wait(self.wake_at);
        }
        if self.params_due || self.params.is_none() {
            return Action::FetchParams;
        }
        match &self.phase {
            // Idle: only a new round can change anything.
            Phase::Idle => Action::FetchParams,
            Phase::AwaitSums => Action::FetchSums,
            Phase::AwaitModel(_) => Action::LoadModel,
            Phase::AwaitSeeds(_) => Action::FetchSeeds(self.keys.public),
            Phase::Sending { parts, .. } => match parts.front() {
                Some(part) => Action::Send(part.clone()),
                None => Action::FetchParams,
            },
        }
    }

    /// Takes the answer to the last [`Action`]. An answer that does not fit the current
    /// phase (e.g. seeds while idle) is ignored.
    pub fn handle(&mut self, response: Response, now: Millis, rng: &mut impl CryptoRngCore) {
        match response {
            Response::Params(Ok(params)) => self.on_params(params, now, rng),
            Response::Params(Err(e)) => self.retry_later(e, now, rng),
            Response::Sums(r) => {
                if !matches!(self.phase, Phase::AwaitSums) {
                    return;
                }
                match r {
                    Ok(Some(sums)) if !sums.is_empty() => {
                        self.failures = 0;
                        self.phase = Phase::AwaitModel(sums);
                    }
                    Ok(_) => self.not_yet(now),
                    Err(e) => self.retry_later(e, now, rng),
                }
            }
            Response::Model(m) => {
                let Phase::AwaitModel(sums) = &self.phase else {
                    return;
                };
                match m {
                    Some(update) => {
                        let sums = sums.clone();
                        self.on_model(&sums, update, rng);
                    }
                    None => self.not_yet(now),
                }
            }
            Response::Seeds(r) => {
                let Phase::AwaitSeeds(ephm) = &self.phase else {
                    return;
                };
                match r {
                    Ok(Some(seeds)) if !seeds.is_empty() => {
                        self.failures = 0;
                        let ephm = ephm.clone();
                        self.on_seeds(&ephm, &seeds, rng);
                    }
                    Ok(_) => self.not_yet(now),
                    Err(e) => self.retry_later(e, now, rng),
                }
            }
            Response::Sent(r) => {
                let Phase::Sending { parts, .. } = &mut self.phase else {
                    return;
                };
                match r {
                    Ok(()) => {
                        self.failures = 0;
                        parts.pop_front();
                        if parts.is_empty() {
                            self.message_delivered(now);
                        }
                    }
                    Err(e) => self.retry_later(e, now, rng),
                }
            }
        }
    }

    fn on_params(&mut self, params: RoundParameters, now: Millis, rng: &mut impl CryptoRngCore) {
        self.params_due = false;
        if self.params.as_ref() == Some(&params) {
            // Within a task the failure count belongs to the task's own request, which is
            // retried next; only an idle participant was waiting for this answer.
            if matches!(self.phase, Phase::Idle) {
                self.failures = 0;
                self.not_yet(now);
            }
            return;
        }
        self.failures = 0;
        self.notices.push_back(Notice::NewRound(params.clone()));
        let sigs = TaskSignatures::sign(&self.keys.secret, &params.seed);
        let task = sigs.task(params.sum, params.update);
        self.task = task;
        self.notices.push_back(Notice::Task(task));
        self.params = Some(params);
        self.phase = match task {
            Task::Sum => {
                let ephm = EncryptKeyPair::generate(rng);
                let payload = Payload::Sum(Sum {
                    sum_signature: sigs.sum,
                    ephm_pk: ephm.public,
                });
                match self.sealed_parts(Tag::Sum, payload, rng) {
                    Ok(parts) => Phase::Sending {
                        tag: Tag::Sum,
                        parts,
                        then: Then::AwaitSeeds(ephm),
                    },
                    Err(reason) => self.abandon(reason),
                }
            }
            Task::Update => Phase::AwaitSums,
            Task::None => Phase::Idle,
        };
        if matches!(self.phase, Phase::Idle) {
            self.not_yet(now);
        }
    }

    fn on_model(&mut self, sums: &SumDict, update: ModelUpdate, rng: &mut impl CryptoRngCore) {
        self.failures = 0;
        self.phase = match self.update_parts(sums, &update, rng) {
            Ok(parts) => Phase::Sending {
                tag: Tag::Update,
                parts,
                then: Then::Idle,
            },
            Err(reason) => self.abandon(reason),
        };
    }

    fn update_parts(
        &self,
        sums: &SumDict,
        update: &ModelUpdate,
        rng: &mut impl CryptoRngCore,
    ) -> Result<VecDeque<Bytes>, String> {
        let params = self.params.as_ref().ok_or("no round parameters")?;
        let want = params.mask_config.vect.data_type;
        let got = update.model.weights().data_type();
        if got != want {
            return Err(format!(
                "the local model holds {} but the round expects {}",
                got.name(),
                want.name()
            ));
        }
        if update.model.len() as u64 != params.model_length {
            return Err(format!(
                "the local model has {} weights but the round expects {}",
                update.model.len(),
                params.model_length
            ));
        }
        let scalar_value = update.scalar.unwrap_or(self.settings.scalar);
        let scalar = Scalar::from_f64(scalar_value)
            .map_err(|e| format!("invalid scalar {scalar_value}: {e}"))?;
        let seed = MaskSeed::generate(rng);
        let masked_model = Masker::new(params.mask_config)
            .mask(&seed, update.model.weights(), &scalar)
            .map_err(|e| format!("cannot mask the local model: {e}"))?;
        let local_seed_dict = sums
            .iter()
            .map(|(pk, epk)| (*pk, seed.encrypt(epk, rng)))
            .collect();
        let sigs = TaskSignatures::sign(&self.keys.secret, &params.seed);
        let payload = Payload::Update(Update {
            sum_signature: sigs.sum,
            update_signature: sigs.update,
            masked_model,
            local_seed_dict,
        });
        self.sealed_parts(Tag::Update, payload, rng)
    }

    fn on_seeds(
        &mut self,
        ephm: &EncryptKeyPair,
        seeds: &UpdateSeedDict,
        rng: &mut impl CryptoRngCore,
    ) {
        self.notices
            .push_back(Notice::SeedsReceived(seeds.keys().copied().collect()));
        self.phase = match self.sum2_parts(ephm, seeds, rng) {
            Ok(parts) => Phase::Sending {
                tag: Tag::Sum2,
                parts,
                then: Then::Idle,
            },
            Err(reason) => self.abandon(reason),
        };
    }

    fn sum2_parts(
        &self,
        ephm: &EncryptKeyPair,
        seeds: &UpdateSeedDict,
        rng: &mut impl CryptoRngCore,
    ) -> Result<VecDeque<Bytes>, String> {
        let params = self.params.as_ref().ok_or("no round parameters")?;
        let len = usize::try_from(params.model_length).map_err(|_| "model too long")?;
        let vect = Group::new(params.mask_config.vect);
        let unit = Group::new(params.mask_config.unit);
        let mut aggregation = Aggregation::with_groups(vect.clone(), unit.clone(), len);
        for (updater, encrypted) in seeds {
            let seed = encrypted
                .decrypt(ephm)
                .map_err(|e| format!("cannot decrypt the seed of updater {updater:?}: {e}"))?;
            aggregation
                .aggregate(seed.derive_mask(len, &vect, &unit))
                .map_err(|e| format!("cannot aggregate the masks: {e}"))?;
        }
        let model_mask = aggregation
            .sum()
            .cloned()
            .ok_or("the seed dictionary is empty")?;
        let sigs = TaskSignatures::sign(&self.keys.secret, &params.seed);
        let payload = Payload::Sum2(Sum2 {
            sum_signature: sigs.sum,
            model_mask,
        });
        self.sealed_parts(Tag::Sum2, payload, rng)
    }

    /// Signs the message, splits it to the maximum message size and seals every part to the
    /// coordinator's round key.
    fn sealed_parts(
        &self,
        tag: Tag,
        payload: Payload,
        rng: &mut impl CryptoRngCore,
    ) -> Result<VecDeque<Bytes>, String> {
        let params = self.params.as_ref().ok_or("no round parameters")?;
        let message = Message {
            participant_pk: self.keys.public,
            coordinator_pk: params.pk,
            tag,
            payload,
        };
        let message_id = (rng.next_u32() & 0xffff) as u16;
        let signed = encode(
            &message,
            &self.keys.secret,
            self.settings.max_message_size,
            message_id,
        )
        .map_err(|e| format!("cannot encode the message: {e}"))?;
        Ok(signed
            .into_iter()
            .map(|part| Bytes::from(params.pk.seal(&part, rng)))
            .collect())
    }

    fn message_delivered(&mut self, now: Millis) {
        let Phase::Sending { tag, then, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        self.notices.push_back(Notice::Sent(tag));
        self.phase = match then {
            Then::Idle => Phase::Idle,
            Then::AwaitSeeds(ephm) => Phase::AwaitSeeds(ephm),
        };
        // Nothing new can be ready at once: look again after the poll interval.
        self.not_yet(now);
    }

    /// Records why the task was given up and returns the idle phase.
    fn abandon(&mut self, reason: String) -> Phase {
        self.notices.push_back(Notice::Abandoned(reason));
        Phase::Idle
    }

    /// Nothing to do yet: check the round again after the poll interval.
    fn not_yet(&mut self, now: Millis) {
        self.params_due = true;
        self.wake_at = now.saturating_add(self.settings.poll_interval_ms);
    }

    /// A request failed: back off exponentially (with jitter) and re-check the round first.
    fn retry_later(&mut self, error: RequestError, now: Millis, rng: &mut impl CryptoRngCore) {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(20);
        let full = self
            .settings
            .retry_min_ms
            .saturating_mul(1 << exp)
            .min(self.settings.retry_max_ms)
            .max(1);
        // Between half and all of the full delay, so that many devices do not retry in step.
        let delay = full / 2 + rng.next_u64() % (full - full / 2 + 1);
        self.params_due = true;
        self.wake_at = now.saturating_add(delay);
        self.notices.push_back(Notice::Retrying {
            error,
            attempt: self.failures,
            at: self.wake_at,
        });
    }
}
