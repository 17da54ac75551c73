//! A tick-driven, blocking participant for hosts that own the schedule: a phone app calling
//! in from its own timer (through the C ABI of `xaynet-mobile`) or Python (`xaynet-python`).
//!
//! Every [`TickParticipant::tick`] runs the [`Participant`] state machine until it has nothing
//! to do right now (it would wait, or it needs the app's model), making its HTTP requests on a
//! private single-threaded runtime, and reports what happened as [`TickFlags`]. The host
//! calls `tick` again later (sooner when [`TickFlags::MADE_PROGRESS`] is set) and answers
//! [`TickFlags::SHOULD_SET_MODEL`] with [`TickParticipant::set_model`].

use std::time::Instant;

use xaynet_core::crypto::{sha256, OsRng, SigningKeyPair};
use xaynet_core::eligibility::Task;
use xaynet_core::mask::DataType;
use xaynet_core::Model;
use zeroize::Zeroizing;

use crate::http::{perform, HttpClient, Transport};
use crate::participant::{Action, LocalModel, ModelUpdate, Notice, Participant, Response};
use crate::settings::{Settings, SettingsError};
use crate::state::RestoreError;

/// What happened during a tick (bit flags; the values are the reference's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickFlags(pub u32);

impl TickFlags {
    /// No task in the current round.
    pub const TASK_NONE: u32 = 1;
    /// The participant is a summer in the current round.
    pub const TASK_SUM: u32 = 2;
    /// The participant is an updater in the current round.
    pub const TASK_UPDATE: u32 = 4;
    /// The participant waits for the app's local model ([`TickParticipant::set_model`]).
    pub const SHOULD_SET_MODEL: u32 = 8;
    /// The state changed: a good moment to save it.
    pub const MADE_PROGRESS: u32 = 16;
    /// A global model different from the last one seen is available
    /// ([`TickParticipant::global_model`]).
    pub const NEW_GLOBAL_MODEL: u32 = 32;

    /// Whether all bits of `flag` are set.
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag == flag
    }
}

/// Errors of the tick-driven participant.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The coordinator URL is not usable.
    #[error("invalid coordinator URL: {0}")]
    Url(String),
    /// A setting cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Saved bytes could not be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The runtime could not start.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(String),
    /// `set_model` outside a round, or with a model that does not fit the round.
    #[error("{0}")]
    Model(String),
    /// The global model could not be fetched or converted.
    #[error("global model: {0}")]
    GlobalModel(String),
}

/// The blocking, tick-driven participant. See the module docs.
pub struct TickParticipant {
    participant: Participant,
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
    origin: Instant,
    model: Option<ModelUpdate>,
    should_set_model: bool,
    new_global_model: bool,
    /// SHA-256 of the last global model body seen, and the model.
    global: Option<([u8; 32], Model)>,
}

impl std::fmt::Debug for TickParticipant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickParticipant")
            .field("participant", &self.participant)
            .field("url", &self.client.base_url())
            .finish_non_exhaustive()
    }
}

/// Actions run per tick at most, so that one tick stays short even when many chunks are due.
const MAX_ACTIONS_PER_TICK: usize = 64;

impl TickParticipant {
    /// A participant with `keys` for the coordinator at `url`.
    pub fn new(url: &str, keys: SigningKeyPair, settings: Settings) -> Result<Self, TickError> {
        Self::with_participant(url, Participant::new(keys, settings)?, None)
    }

    /// A participant from [`TickParticipant::save`] bytes (the URL is not part of the state).
    pub fn restore(url: &str, saved: &[u8]) -> Result<Self, TickError> {
        Self::with_participant(url, Participant::restore(saved)?, None)
    }

    /// Like [`TickParticipant::new`] with a configured HTTP client (e.g. own TLS roots).
    pub fn with_participant(
        url: &str,
        participant: Participant,
        http: Option<reqwest::Client>,
    ) -> Result<Self, TickError> {
        let client = match http {
            Some(h) => HttpClient::with_client(h, url),
            None => HttpClient::new(url),
        }
        .map_err(|e| TickError::Url(e.0))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TickError::Runtime(e.to_string()))?;
        Ok(Self {
            participant,
            client,
            runtime,
            origin: Instant::now(),
            model: None,
            should_set_model: false,
            new_global_model: false,
            global: None,
        })
    }

    /// The state machine (read-only).
    pub fn participant(&self) -> &Participant {
        &self.participant
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Runs the participant until it has nothing to do right now; see [`TickFlags`].
    pub fn tick(&mut self) -> TickFlags {
        let mut progress = false;
        for _ in 0..MAX_ACTIONS_PER_TICK {
            let now = self.now();
            let before = self.fingerprint();
            let response = match self.participant.poll(now) {
                Action::Wait(_) => break,
                Action::LoadModel => match self.model.take() {
                    Some(m) => {
                        self.should_set_model = false;
                        Response::Model(Some(m))
                    }
                    None => {
                        self.should_set_model = true;
                        Response::Model(None)
                    }
                },
                action => match self.runtime.block_on(perform(&self.client, action)) {
                    Some(response) => response,
                    None => break,
                },
            };
            let now = self.now();
            self.participant.handle(response, now, &mut OsRng);
            let mut new_round = false;
            while let Some(notice) = self.participant.next_notice() {
                if let Notice::NewRound(_) = notice {
                    new_round = true;
                    self.should_set_model = false;
                    // A model set for the last round is not used for this one.
                    self.model = None;
                }
            }
            if new_round {
                self.check_global_model();
            }
            progress |= self.fingerprint() != before;
        }
        let mut flags = match self.participant.task() {
            Task::None => TickFlags::TASK_NONE,
            Task::Sum => TickFlags::TASK_SUM,
            Task::Update => TickFlags::TASK_UPDATE,
        };
        if self.should_set_model {
            flags |= TickFlags::SHOULD_SET_MODEL;
        }
        if progress {
            flags |= TickFlags::MADE_PROGRESS;
        }
        if self.new_global_model {
            flags |= TickFlags::NEW_GLOBAL_MODEL;
        }
        TickFlags(flags)
    }

    /// What identifies a change of state (for MADE_PROGRESS).
    fn fingerprint(&self) -> (&'static str, usize, Option<[u8; 32]>) {
        (
            self.participant.phase_name(),
            self.participant.parts_left(),
            self.participant.round_params().map(|p| p.seed.0),
        )
    }

    /// Downloads the global model at a new round; flags it if it differs from the last one.
    fn check_global_model(&mut self) {
        let Ok(Some(model)) = self.runtime.block_on(self.client.model()) else {
            return;
        };
        let digest = model_digest(&model);
        if self.global.as_ref().map(|(d, _)| d) != Some(&digest) {
            self.global = Some((digest, model));
            self.new_global_model = true;
        }
    }

    /// The data type and length the current round expects of the local model (`None`
    /// before the participant has read the round parameters).
    pub fn local_model_config(&self) -> Option<(DataType, u64)> {
        self.participant
            .round_params()
            .map(|p| (p.mask_config.vect.data_type, p.model_length))
    }

    /// Hands over the local model for the current round (used when the participant next
    /// needs it). Checks the data type and length against the round.
    pub fn set_model(&mut self, model: LocalModel, scalar: Option<f64>) -> Result<(), TickError> {
        let (data_type, len) = self
            .local_model_config()
            .ok_or_else(|| TickError::Model("no round yet: tick first".into()))?;
        let got = model.weights().data_type();
        if got != data_type {
            return Err(TickError::Model(format!(
                "the round expects {} weights, got {}",
                data_type.name(),
                got.name()
            )));
        }
        if model.len() as u64 != len {
            return Err(TickError::Model(format!(
                "the round expects {len} weights, got {}",
                model.len()
            )));
        }
        if let Some(s) = scalar {
            if !(s.is_finite() && s >= 0.0) {
                return Err(TickError::Model(format!(
                    "scalar must be a finite number ≥ 0, got {s}"
                )));
            }
        }
        self.model = Some(ModelUpdate { model, scalar });
        self.should_set_model = false;
        Ok(())
    }

    /// The latest global model (`None` before the first), and clears NEW_GLOBAL_MODEL.
    /// Uses the copy fetched at the start of the round, or downloads it.
    pub fn global_model(&mut self) -> Result<Option<Model>, TickError> {
        if self.global.is_none() {
            let model = self
                .runtime
                .block_on(self.client.model())
                .map_err(|e| TickError::GlobalModel(e.0))?;
            if let Some(m) = model {
                self.global = Some((model_digest(&m), m));
            }
        }
        self.new_global_model = false;
        Ok(self.global.as_ref().map(|(_, m)| m.clone()))
    }

    /// The whole state as bytes (see [`crate::state`] on keeping them safe).
    pub fn save(&self) -> Zeroizing<Vec<u8>> {
        self.participant.save()
    }
}

/// A digest of a model's exact values (to tell whether it changed).
fn model_digest(model: &Model) -> [u8; 32] {
    sha256(&model.to_bincode())
}
