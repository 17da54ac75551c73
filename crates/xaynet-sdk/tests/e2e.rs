//! End to end over real HTTP on 127.0.0.1: 60 SDK participants (the async runner with the
//! reqwest client) against our coordinator, several rounds, with participants killed mid-round
//! and restored from their `save()` bytes.
//!
//! The sum phase accepts exactly one summer per round (count min = max = 1). In the first round
//! *every* summer is killed while it waits for its seeds and restored 200 ms later from its last
//! saved bytes, so the summer the coordinator accepted is certainly one of them: the round can
//! only finish if a restored summer decrypts the seeds with its restored ephemeral key and
//! delivers its Sum2. One updater is killed halfway through sending its chunked Update; after
//! restoring it sends the rest, and its update must be among the accepted ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::message::Tag;
use xaynet_core::{PublicSigningKey, RoundParameters};
use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Notice, Participant, Runner, Settings};
use xaynet_test_support::{f32s, model, test_settings};

const PARTICIPANTS: usize = 60;
const LEN: usize = 1000;
const ROUNDS: u64 = 3;

#[derive(Default)]
struct Shared {
    /// Latest `save()` bytes per participant.
    saved: HashMap<usize, Vec<u8>>,
    /// (participant, hex round seed, notice).
    log: Vec<(usize, String, Notice)>,
    /// Participants killed and not yet restored.
    killed: Vec<usize>,
    /// Every participant that was killed.
    ever_killed: BTreeSet<usize>,
    updater_killed: bool,
    /// Global models handed to participant 0 by its runner at new rounds.
    globals: Vec<Vec<f32>>,
}

struct TestApp {
    i: usize,
    shared: Arc<Mutex<Shared>>,
    /// Stops this participant's runner (a kill); `None` once used. Dropping it would stop
    /// the runner too, so restored participants keep theirs unused.
    kill: Option<oneshot::Sender<()>>,
    killable: bool,
    /// Kills happen only in the first round this participant sees.
    first_seed: Option<String>,
    update_parts: usize,
}

fn seed_hex(p: &Participant) -> String {
    p.round_params()
        .map(|r| hex(r.seed.as_bytes()))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl App for TestApp {
    async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
        assert_eq!(params.model_length as usize, LEN);
        Some(ModelUpdate {
            model: LocalModel::F32(model(self.i as u32, LEN)),
            scalar: None,
        })
    }

    fn wants_global_model(&self) -> bool {
        self.i == 0
    }

    async fn global_model(&mut self, model: Option<xaynet_core::Model>) {
        if let Some(m) = model {
            self.shared
                .lock()
                .unwrap()
                .globals
                .push(m.to_f32().unwrap());
        }
    }

    fn notice(&mut self, p: &Participant, notice: &Notice) {
        self.shared
            .lock()
            .unwrap()
            .log
            .push((self.i, seed_hex(p), notice.clone()));
    }

    fn after_step(&mut self, p: &Participant) {
        let mut shared = self.shared.lock().unwrap();
        shared.saved.insert(self.i, p.save().to_vec());
        let seed = seed_hex(p);
        if self.first_seed.is_none() && !seed.is_empty() {
            self.first_seed = Some(seed.clone());
        }
        if !self.killable
            || self.kill.is_none()
            || self.first_seed.as_deref() != Some(seed.as_str())
        {
            return;
        }
        let kill = match p.phase_name() {
            "awaiting_seeds" => true,
            "sending_update" => {
                self.update_parts = self.update_parts.max(p.parts_left());
                let halfway = p.parts_left() * 2 <= self.update_parts;
                let kill = halfway && !shared.updater_killed;
                shared.updater_killed |= kill;
                kill
            }
            _ => false,
        };
        if kill {
            shared.killed.push(self.i);
            shared.ever_killed.insert(self.i);
            if let Some(k) = self.kill.take() {
                let _ = k.send(());
            }
        }
    }
}

async fn run(
    i: usize,
    participant: Participant,
    url: String,
    shared: Arc<Mutex<Shared>>,
    may_be_killed: bool,
) {
    let (tx, rx) = oneshot::channel();
    let app = TestApp {
        i,
        shared,
        kill: Some(tx),
        killable: may_be_killed,
        first_seed: None,
        update_parts: 0,
    };
    let client = HttpClient::new(&url).unwrap();
    let mut runner = Runner::new(participant, client, app);
    runner.run(rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_participants_with_kills_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), LEN);
    settings.pet.sum.prob = Some(0.15);
    settings.pet.update.prob = Some(0.3);
    settings.pet.sum.count.min = 1;
    settings.pet.sum.count.max = 1;
    settings.pet.update.count.min = 3;
    settings.pet.update.time.min = 2.0;
    settings.pet.sum2.count.min = 1;
    settings.pet.sum2.count.max = 1;
    settings.pet.sum2.time.min = 0.2;
    let running = xaynet_server::server::start(settings).await.unwrap();
    let url = format!("http://{}", running.addr);

    let participant_settings = Settings {
        poll_interval_ms: 50,
        retry_min_ms: 50,
        retry_max_ms: 500,
        // About 6 kB per Update: four chunks each.
        max_message_size: Some(2000),
        ..Settings::default()
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let keys: Vec<PublicSigningKey> = (0..PARTICIPANTS)
        .map(|i| SigningKeyPair::from_seed(&[i as u8 + 1; 32]).public)
        .collect();
    let mut tasks: HashMap<usize, tokio::task::JoinHandle<()>> = (0..PARTICIPANTS)
        .map(|i| {
            let keys = SigningKeyPair::from_seed(&[i as u8 + 1; 32]);
            let p = Participant::new(keys, participant_settings.clone()).unwrap();
            (
                i,
                tokio::spawn(run(i, p, url.clone(), shared.clone(), true)),
            )
        })
        .collect();

    // Restore killed participants 200 ms after their death; collect ROUNDS global models.
    let mut published = running.published.clone();
    let mut models = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while (models.len() as u64) < ROUNDS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {ROUNDS} rounds in 90 s; last failure: {:?}",
            published.borrow().last_failure
        );
        let killed: Vec<usize> = std::mem::take(&mut shared.lock().unwrap().killed);
        for i in killed {
            let dead = tasks.remove(&i).unwrap();
            let (url, shared) = (url.clone(), shared.clone());
            let reborn = tokio::spawn(async move {
                dead.await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                let bytes = shared.lock().unwrap().saved[&i].clone();
                let restored = Participant::restore(&bytes).unwrap();
                run(i, restored, url, shared, false).await;
            });
            tasks.insert(i, reborn);
        }
        let current = published.borrow().model.clone();
        if let Some(m) = current {
            if models.last().map(|(id, _)| id != &m.id).unwrap_or(true) {
                models.push((m.id.clone(), f32s(&m.raw().unwrap())));
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), published.changed()).await;
    }
    for task in tasks.values() {
        task.abort();
    }

    running.stop().await;
    let shared = shared.lock().unwrap();
    // Participant 0's runner fetched the global model at each new round (v1 /model, exact
    // rationals): every one it got is one the coordinator published.
    assert!(!shared.globals.is_empty());
    for g in &shared.globals {
        assert!(models.iter().any(|(_, m)| m == g), "an unpublished model");
    }
    assert!(
        models[0].0.starts_with("1_"),
        "the first round (the one with the kills) must not fail: {:?}",
        published.borrow().last_failure
    );
    assert!(
        shared.ever_killed.len() >= 2,
        "at least one summer and one updater killed: {:?}",
        shared.ever_killed
    );
    for (round, (id, got)) in models.iter().enumerate() {
        let seed = id.split('_').nth(1).unwrap();
        // The accepted updaters of this round: the seeds the accepted summer received.
        let accepted: BTreeSet<PublicSigningKey> = shared
            .log
            .iter()
            .filter(|(_, s, _)| s == seed)
            .find_map(|(_, _, n)| match n {
                Notice::SeedsReceived(keys) => Some(keys.iter().copied().collect()),
                _ => None,
            })
            .expect("a summer received the seeds");
        assert!(
            accepted.len() >= 3,
            "round {round}: {} updates",
            accepted.len()
        );
        let updaters: Vec<usize> = (0..PARTICIPANTS)
            .filter(|i| accepted.contains(&keys[*i]))
            .collect();
        for (j, g) in got.iter().enumerate() {
            let want = updaters
                .iter()
                .map(|&i| model(i as u32, LEN)[j] as f64)
                .sum::<f64>()
                / updaters.len() as f64;
            assert!(
                (*g as f64 - want).abs() <= 1e-6,
                "round {round} weight {j}: {g} vs {want}"
            );
        }
        if round == 0 {
            // The summer whose Sum2 finished the round was killed and restored, and so was
            // the updater killed halfway through its chunks, whose update was accepted.
            let sum2_senders: BTreeSet<usize> = shared
                .log
                .iter()
                .filter(|(_, s, n)| s == seed && *n == Notice::Sent(Tag::Sum2))
                .map(|(i, _, _)| *i)
                .collect();
            assert!(!sum2_senders.is_empty());
            assert!(
                sum2_senders.is_subset(&shared.ever_killed),
                "sum2 from {sum2_senders:?}, killed {:?}",
                shared.ever_killed
            );
            let killed_updaters: Vec<usize> = shared
                .ever_killed
                .iter()
                .copied()
                .filter(|i| !sum2_senders.contains(i))
                .filter(|i| {
                    shared
                        .log
                        .iter()
                        .any(|(j, s, n)| j == i && s == seed && *n == Notice::Sent(Tag::Update))
                })
                .collect();
            assert_eq!(killed_updaters.len(), 1, "{:?}", shared.ever_killed);
            assert!(
                accepted.contains(&keys[killed_updaters[0]]),
                "the restored updater's update was accepted"
            );
        }
    }
}
