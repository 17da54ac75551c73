//! An async runner: the driver loop of [`crate::participant`] over a [`Transport`], with
//! tokio timers and the operating system's randomness.
//!
//! ```no_run
//! use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Participant, Runner, Settings};
//! use xaynet_core::{RoundParameters, SigningKeyPair};
//!
//! struct MyApp;
//!
//! impl App for MyApp {
//!     async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
//!         // Train here (or hand over a model trained earlier).
//!         let weights = vec![0.0f32; params.model_length as usize];
//!         Some(ModelUpdate { model: LocalModel::F32(weights), scalar: None })
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = SigningKeyPair::generate(&mut xaynet_core::crypto::OsRng);
//! let participant = Participant::new(keys, Settings::default())?;
//! let client = HttpClient::new("http://127.0.0.1:8081")?;
//! let mut runner = Runner::new(participant, client, MyApp);
//! runner.run(tokio::signal::ctrl_c()).await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use xaynet_core::crypto::OsRng;
use xaynet_core::{Model, RoundParameters};

use crate::http::{perform, Transport};
use crate::participant::{Action, Millis, ModelUpdate, Notice, Participant, Response};

/// What the app supplies: its local model, and (optionally) what it wants to hear.
pub trait App: Send {
    /// The local model for the round with these parameters: train here, or hand over a
    /// model trained earlier. `None` means "not ready yet"; the participant asks again after
    /// its poll interval.
    fn load_model(
        &mut self,
        params: &RoundParameters,
    ) -> impl Future<Output = Option<ModelUpdate>> + Send;

    /// Called for every notice (new round, task, message sent, retries…).
    fn notice(&mut self, _participant: &Participant, _notice: &Notice) {}

    /// Whether the runner should download the global model at every new round and hand it
    /// to [`App::global_model`]. Off by default: the SDK itself never needs the model.
    fn wants_global_model(&self) -> bool {
        false
    }

    /// The latest global model, fetched at a new round if [`App::wants_global_model`];
    /// `None` before the coordinator has published one. Not called when the download fails
    /// (the next new round tries again).
    fn global_model(&mut self, _model: Option<Model>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called after every step that may have changed the participant's state; an app that
    /// must survive being killed saves [`Participant::save`] here.
    fn after_step(&mut self, _participant: &Participant) {}
}

/// Drives one participant.
pub struct Runner<T, A> {
    participant: Participant,
    transport: T,
    app: A,
    origin: Instant,
}

impl<T: Transport, A: App> Runner<T, A> {
    /// A runner for `participant`, talking through `transport`.
    pub fn new(participant: Participant, transport: T, app: A) -> Self {
        Self {
            participant,
            transport,
            app,
            origin: Instant::now(),
        }
    }

    /// The participant.
    pub fn participant(&self) -> &Participant {
        &self.participant
    }

    /// The app.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The app, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Takes the runner apart.
    pub fn into_parts(self) -> (Participant, T, A) {
        (self.participant, self.transport, self.app)
    }

    fn now(&self) -> Millis {
        self.origin.elapsed().as_millis() as Millis
    }

    /// Performs one action: waits, or makes one request and hands its answer over.
    pub async fn step(&mut self) {
        let now = self.now();
        let response = match self.participant.poll(now) {
            Action::Wait(until) => {
                tokio::time::sleep_until(self.origin + Duration::from_millis(until)).await;
                return;
            }
            Action::LoadModel => {
                let model = match self.participant.round_params() {
                    Some(params) => {
                        let params = params.clone();
                        self.app.load_model(&params).await
                    }
                    None => None,
                };
                Response::Model(model)
            }
            action => match perform(&self.transport, action).await {
                Some(response) => response,
                None => return,
            },
        };
        let now = self.now();
        self.participant.handle(response, now, &mut OsRng);
        let mut new_round = false;
        while let Some(notice) = self.participant.next_notice() {
            new_round |= matches!(notice, Notice::NewRound(_));
            self.app.notice(&self.participant, &notice);
        }
        self.app.after_step(&self.participant);
        if new_round && self.app.wants_global_model() {
            if let Ok(model) = self.transport.model().await {
                self.app.global_model(model).await;
            }
        }
    }

    /// Runs until `stop` completes.
    pub async fn run(&mut self, stop: impl Future) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => return,
                _ = self.step() => {}
            }
        }
    }
}
