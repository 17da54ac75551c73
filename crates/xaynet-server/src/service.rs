//! The coordinator: the round engine in one task, its storage, and what it publishes.
//!
//! Requests arrive through a bounded channel. The task takes them in batches, lets the engine
//! decide, commits the batch's changes (and the running aggregate) to the store in one
//! transaction, and only then answers the senders. Between batches it applies the engine's
//! time rules. A failed commit reloads the engine from the store, so memory never runs ahead
//! of what is durable.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::sync::{mpsc, oneshot, watch};
use xaynet_core::crypto::{OsRng, PublicEncryptKey, PublicSigningKey};
use xaynet_core::eligibility::RoundSeed;
use xaynet_core::mask::{DataType, UnmaskedModel};
use xaynet_core::message::{Chunk, Tag};
use xaynet_core::rest::{sum_dict_to_bincode, update_seed_dict_to_bincode};

use crate::engine::{Change, Counts, Engine, PetSettings, Phase, Request, Verdict};
use crate::metrics::Metrics;
pub use crate::model_store::ModelStore;
use crate::multipart::Multipart;
use crate::pipeline::{to_request, RoundContext};
use crate::settings::LimitsSection;
use crate::store::{ops_of, Op, Store, StoreError};

/// Milliseconds since the UNIX epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A global model as served.
#[derive(Debug)]
pub struct PublishedModel {
    /// The round that produced it.
    pub round_id: u64,
    /// Its id (`<round>_<hex seed>`).
    pub id: String,
    /// The exact model.
    pub model: UnmaskedModel,
    /// The data type of the weights.
    pub data_type: DataType,
    raw: OnceLock<Option<Bytes>>,
    v1: OnceLock<Bytes>,
}

impl PublishedModel {
    fn new(round_id: u64, id: String, model: UnmaskedModel, data_type: DataType) -> Self {
        Self {
            round_id,
            id,
            model,
            data_type,
            raw: OnceLock::new(),
            v1: OnceLock::new(),
        }
    }

    /// The weights as little-endian values of the data type (`f32`, `f64`, `i32`, `i64`);
    /// `None` if a weight does not fit the type.
    pub fn raw(&self) -> Option<Bytes> {
        self.raw
            .get_or_init(|| {
                let m = &self.model;
                let bytes: Vec<u8> = match self.data_type {
                    DataType::F32 => m
                        .to_f32()
                        .ok()?
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                    DataType::F64 => m
                        .to_f64()
                        .ok()?
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                    DataType::I32 => m
                        .to_i32()
                        .ok()?
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                    DataType::I64 => m
                        .to_i64()
                        .ok()?
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                };
                Some(Bytes::from(bytes))
            })
            .clone()
    }

    /// The v1 `/model` body: bincode of the exact rationals.
    pub fn v1_bincode(&self) -> Bytes {
        self.v1
            .get_or_init(|| Bytes::from(self.model.to_model().to_bincode()))
            .clone()
    }
}

/// What the coordinator currently publishes. Replaced as a whole on every change.
#[derive(Clone, Debug)]
pub struct Published {
    /// The round's key pair, parameters and phase (for the message pipeline).
    pub ctx: Arc<RoundContext>,
    /// The round.
    pub round_id: u64,
    /// When the phase started (ms since the epoch).
    pub phase_start_ms: u64,
    /// The phase's hard deadline (ms since the epoch).
    pub phase_deadline_ms: Option<u64>,
    /// `GET /params` body.
    pub params_bincode: Bytes,
    /// `GET /sums` body, once published.
    pub sum_dict: Option<Bytes>,
    /// `GET /seeds` bodies per summer, during Sum2.
    pub seeds: Option<Arc<HashMap<PublicSigningKey, Bytes>>>,
    /// Counts of the sum, update and sum2 phases.
    pub counts: [Counts; 3],
    /// The round that ended last and its final counts (sum, update, sum2).
    pub previous_counts: Option<(u64, [Counts; 3])>,
    /// The latest global model.
    pub model: Option<Arc<PublishedModel>>,
    /// Why the last round failed, if the last round failed.
    pub last_failure: Option<String>,
    /// Largest payload a multipart message may reassemble to.
    pub max_message_bytes: usize,
}

/// A command for the coordinator task.
pub(crate) enum Cmd {
    Request {
        round_pk: PublicEncryptKey,
        request: Request,
        reply: oneshot::Sender<Verdict>,
    },
    Chunk {
        round_pk: PublicEncryptKey,
        pk: PublicSigningKey,
        tag: Tag,
        chunk: Chunk,
        reply: oneshot::Sender<Verdict>,
    },
    Ready(oneshot::Sender<bool>),
    /// A message refused before reaching the engine (counted in the round's statistics).
    Count(Verdict),
}

/// The coordinator task's state.
pub(crate) struct Coordinator<S: Store> {
    settings: PetSettings,
    engine: Engine,
    store: S,
    models: ModelStore,
    rng: ChaCha20Rng,
    multipart: Multipart,
    model: Option<Arc<PublishedModel>>,
    published: watch::Sender<Arc<Published>>,
    metrics: Arc<Metrics>,
    max_message_bytes: usize,
    /// Verdicts waiting for their changes to be committed (group commit).
    pending: Vec<(oneshot::Sender<Verdict>, Verdict)>,
    pending_changes: Vec<Change>,
    pending_since: Option<std::time::Instant>,
    commit_interval: Duration,
    /// Messages in the pipeline (decrypting, verifying) right now; when none are and no
    /// request waits, nothing is coming to share a commit with, so it happens at once.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

fn seeded_rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut seed);
    ChaCha20Rng::from_seed(seed)
}

/// Largest Update payload for the settings (what a multipart message may add up to).
fn max_update_payload(s: &PetSettings) -> usize {
    let bpn = s.mask.vect.bytes_per_number();
    let ubpn = s.mask.unit.bytes_per_number();
    128 + 8 + bpn * s.model_length + 4 + ubpn + 4 + 112 * s.sum.max_count as usize
}

impl<S: Store> Coordinator<S> {
    /// Restores or starts the engine from the store and publishes the first state.
    pub(crate) async fn start(
        settings: PetSettings,
        limits: LimitsSection,
        store: S,
        models: ModelStore,
        metrics: Arc<Metrics>,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Result<(Self, watch::Receiver<Arc<Published>>), StoreError> {
        let mut rng = seeded_rng();
        let now = now_ms();
        let loaded = store.load().await?;
        let (engine, changes) = match loaded.snapshot {
            Some(snapshot) => {
                tracing::info!(
                    round = snapshot.round.round_id,
                    phase = snapshot.round.phase.name(),
                    "restoring stored round"
                );
                Engine::restore(settings.clone(), snapshot, now, &mut rng)
            }
            None => Engine::new(settings.clone(), 0, RoundSeed::ZERO, now, &mut rng),
        };
        let mut model = None;
        if let Some(id) = loaded.latest_model_id {
            match models.get(&id).await.map(|b| UnmaskedModel::decode(&b)) {
                Ok(Some(m)) if m.len() == settings.model_length => {
                    let round_id = id
                        .split('_')
                        .next()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    model = Some(Arc::new(PublishedModel::new(
                        round_id,
                        id,
                        m,
                        settings.mask.vect.data_type,
                    )));
                }
                Ok(_) => {
                    tracing::warn!(%id, "stored global model is unusable for the current settings; not serving it")
                }
                Err(e) => {
                    tracing::warn!(%id, error = %e, "stored global model could not be read; not serving it")
                }
            }
        }
        let max_message_bytes = max_update_payload(&settings);
        let (tx, rx) = watch::channel(Arc::new(Self::snapshot_published(
            &engine,
            model.clone(),
            max_message_bytes,
        )));
        let mut c = Coordinator {
            multipart: Multipart::new(&limits),
            settings,
            engine,
            store,
            models,
            rng,
            model,
            published: tx,
            metrics,
            max_message_bytes,
            pending: Vec::new(),
            pending_changes: Vec::new(),
            pending_since: None,
            commit_interval: Duration::from_secs_f64(limits.commit_interval),
            in_flight,
        };
        c.persist(changes).await?;
        c.publish();
        Ok((c, rx))
    }

    fn snapshot_published(
        engine: &Engine,
        model: Option<Arc<PublishedModel>>,
        max_message_bytes: usize,
    ) -> Published {
        let round = engine.round();
        let sum_dict = engine
            .published_sum_dict()
            .map(|d| Bytes::from(sum_dict_to_bincode(d)));
        let seeds = (engine.phase() == Phase::Sum2).then(|| {
            Arc::new(
                engine
                    .seed_dict()
                    .iter()
                    .map(|(pk, d)| (*pk, Bytes::from(update_seed_dict_to_bincode(d))))
                    .collect(),
            )
        });
        Published {
            ctx: Arc::new(RoundContext {
                keys: round.keys.clone(),
                params: round.params.clone(),
                phase: round.phase,
            }),
            round_id: round.round_id,
            phase_start_ms: round.phase_start_ms,
            phase_deadline_ms: engine.phase_deadline(),
            params_bincode: Bytes::from(round.params.to_bincode()),
            sum_dict,
            seeds,
            counts: engine.phase_counts(),
            previous_counts: engine.previous_counts(),
            model,
            last_failure: engine.last_failure().map(str::to_owned),
            max_message_bytes,
        }
    }

    fn publish(&self) {
        let p = Self::snapshot_published(&self.engine, self.model.clone(), self.max_message_bytes);
        self.metrics
            .set_phase(self.engine.phase() as u8, self.engine.round().round_id);
        self.metrics
            .set_distinct_masks(self.engine.distinct_masks());
        self.published.send_replace(Arc::new(p));
    }

    /// Makes `changes` (and the aggregate, if it changed) durable. Global models are written
    /// to the model store before the store records them as the latest.
    async fn persist(&mut self, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for change in &changes {
            match change {
                Change::GlobalModel(g) => {
                    let bytes = g.model.encode();
                    self.models.put(&g.id(), bytes).await?;
                    self.metrics.round_end(false);
                    tracing::info!(round = g.round_id, id = %g.id(), "published a new global model");
                }
                Change::RoundFailed { round_id, reason } => {
                    self.metrics.round_end(true);
                    tracing::warn!(round = round_id, %reason, "round failed");
                }
                Change::Phase { phase, .. } => {
                    tracing::info!(phase = phase.name(), "phase started");
                }
                Change::NewRound(r) => {
                    tracing::info!(round = r.round_id, "round started");
                }
                _ => {}
            }
        }
        // The aggregate must follow the updates it contains and precede a new round's reset.
        // Updates are only accepted by `handle` and rounds only start in `tick`, so a batch
        // never holds both: the aggregate goes after the updates it contains.
        ops.extend(ops_of(&changes));
        if self.engine.take_aggregate_dirty() {
            if let Some(sum) = self.engine.aggregation().sum() {
                ops.push(Op::SetAggregate {
                    bytes: sum.to_bytes(),
                    nb_models: self.engine.aggregation().nb_models(),
                });
            }
        }
        for change in &changes {
            if let Change::GlobalModel(g) = change {
                let id = g.id();
                self.model = Some(Arc::new(PublishedModel::new(
                    g.round_id,
                    id,
                    g.model.clone(),
                    self.settings.mask.vect.data_type,
                )));
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.store.commit(ops).await
    }

    /// Reloads the engine from the store after a failed commit, retrying until the store
    /// answers.
    async fn recover(&mut self, error: StoreError) {
        tracing::error!(%error, "storage failed; reloading the round from storage");
        loop {
            match self.store.load().await {
                Ok(loaded) => {
                    let now = now_ms();
                    let (engine, changes) = match loaded.snapshot {
                        Some(s) => Engine::restore(self.settings.clone(), s, now, &mut self.rng),
                        None => Engine::new(
                            self.settings.clone(),
                            0,
                            RoundSeed::ZERO,
                            now,
                            &mut self.rng,
                        ),
                    };
                    self.engine = engine;
                    match self.persist(changes).await {
                        Ok(()) => {
                            self.publish();
                            return;
                        }
                        Err(e) => tracing::error!(error = %e, "storage still failing"),
                    }
                }
                Err(e) => tracing::error!(error = %e, "storage unavailable"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn tick(&mut self) {
        // Time rules may end the phase: what was accepted in it is committed first.
        self.flush().await;
        let now = now_ms();
        let before = (
            self.engine.round().round_id,
            self.engine.phase(),
            self.engine.round().phase_start_ms,
        );
        let changes = tokio::task::block_in_place(|| self.engine.tick(now, &mut self.rng));
        if changes.is_empty() {
            return;
        }
        self.metrics.phase_duration(
            before.1.name(),
            now.saturating_sub(before.2) as f64 / 1000.0,
        );
        if let Err(e) = self.persist(changes).await {
            self.recover(e).await;
        }
        self.publish();
    }

    async fn handle_batch(&mut self, batch: Vec<Cmd>) {
        let now = now_ms();
        let started = std::time::Instant::now();
        let batch_len = batch.len();
        let round_pk = self.engine.round().keys.public;
        let mut replies = Vec::with_capacity(batch.len());
        let mut changes = Vec::new();
        let phase_name = self.engine.phase().name();
        tokio::task::block_in_place(|| {
            for cmd in batch {
                match cmd {
                    Cmd::Request {
                        round_pk,
                        request,
                        reply,
                    } => {
                        let (v, c) = self.engine.handle(&round_pk, request);
                        changes.extend(c);
                        replies.push((reply, v));
                    }
                    Cmd::Chunk {
                        round_pk: msg_pk,
                        pk,
                        tag,
                        chunk,
                        reply,
                    } => {
                        let v = if msg_pk != round_pk {
                            Verdict::Rejected(crate::engine::RejectReason::WrongRound)
                        } else {
                            match self.multipart.add(
                                now,
                                msg_pk,
                                pk,
                                tag,
                                chunk,
                                self.max_message_bytes,
                            ) {
                                Ok(None) => Verdict::Accepted,
                                Ok(Some(payload)) => {
                                    match to_request(pk, payload, &self.engine.round().params) {
                                        Ok(req) => {
                                            let (v, c) = self.engine.handle(&msg_pk, req);
                                            changes.extend(c);
                                            v
                                        }
                                        Err(e) => {
                                            self.metrics.message(phase_name, "rejected", e.label());
                                            Verdict::Rejected(
                                                crate::engine::RejectReason::WrongPhase("chunk"),
                                            )
                                        }
                                    }
                                }
                                Err(reason) => {
                                    self.metrics.message(phase_name, "discarded", reason);
                                    Verdict::Discarded
                                }
                            }
                        };
                        replies.push((reply, v));
                    }
                    Cmd::Ready(reply) => {
                        let _ = reply.send(true);
                    }
                    Cmd::Count(verdict) => self.engine.count_outside(&verdict),
                }
            }
        });
        tracing::debug!(batch = batch_len, handled = ?started.elapsed(), "batch");
        self.pending.extend(replies);
        self.pending_changes.extend(changes);
        if self.pending_since.is_none() {
            self.pending_since = Some(std::time::Instant::now());
        }
        if self.pending.len() >= 512 || self.commit_interval.is_zero() {
            self.flush().await;
        }
    }

    /// Whether more requests are on their way (queued or in the pipeline).
    fn busy(&self, rx: &mpsc::Receiver<Cmd>) -> bool {
        !rx.is_empty() || self.in_flight.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Commits what the pending verdicts depend on, then answers their senders.
    async fn flush(&mut self) {
        let Some(since) = self.pending_since.take() else {
            return;
        };
        let changes = std::mem::take(&mut self.pending_changes);
        let replies = std::mem::take(&mut self.pending);
        let started = std::time::Instant::now();
        let result = self.persist(changes).await;
        tracing::debug!(verdicts = replies.len(), waited = ?since.elapsed(), commit = ?started.elapsed(), "group commit");
        match result {
            Ok(()) => {
                // Publish first, so a sender that reads `/status` after its answer sees itself.
                self.publish();
                for (reply, v) in replies {
                    let _ = reply.send(v);
                }
            }
            Err(e) => {
                for (reply, _) in replies {
                    let _ = reply.send(Verdict::Discarded);
                }
                self.recover(e).await;
                self.publish();
            }
        }
    }

    /// Runs until `rx` closes.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            let deadline = self.engine.next_deadline().unwrap_or(now_ms() + 1000);
            let mut wait = Duration::from_millis(deadline.saturating_sub(now_ms()).min(1000));
            if let Some(since) = self.pending_since {
                wait = wait.min(
                    (since + self.commit_interval)
                        .saturating_duration_since(std::time::Instant::now()),
                );
            }
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    if let Cmd::Ready(reply) = cmd {
                        let _ = reply.send(self.store.ping().await.is_ok());
                        continue;
                    }
                    let mut batch = vec![cmd];
                    while batch.len() < 64 {
                        match rx.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(_) => break,
                        }
                    }
                    self.handle_batch(batch).await;
                    if !self.busy(&rx) {
                        self.flush().await;
                    }
                }
                // A commit or a time rule is due; `tick` commits first.
                _ = tokio::time::sleep(wait) => self.tick().await,
            }
        }
        self.flush().await;
        tracing::info!("coordinator stopped");
    }
}
