//! Test support shared by the integration tests: settings for fast rounds on free loopback
//! ports, an HTTP client for the coordinator's API, a minimal participant written directly on
//! xaynet-core, and helpers that start and stop coordinator processes.
//!
//! Test code: it panics on anything unexpected.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod browser;
pub mod process;

/// Certificates for TLS tests.
pub mod tls {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    /// A private CA and a certificate for `localhost` it signed: (CA, server certificate PEM,
    /// server key PEM).
    pub fn private_ca() -> (CertifiedIssuer<'static, KeyPair>, String, String) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        (ca, server.pem(), server_key.serialize_pem())
    }
}

use std::time::{Duration, Instant};

use xaynet_core::crypto::{EncryptKeyPair, OsRng, SigningKeyPair};
use xaynet_core::eligibility::{Task, TaskSignatures};
use xaynet_core::mask::{Aggregation, Group, MaskSeed, Masker};
use xaynet_core::message::{encode, Message, Payload, Sum, Sum2, Tag, Update};
use xaynet_core::model::{Scalar, Weights};
use xaynet_core::rest::{sum_dict_from_bincode, update_seed_dict_from_bincode};
use xaynet_core::RoundParameters;
use xaynet_server::settings::Settings;

/// Settings for fast test rounds on a free port with storage in `dir`.
pub fn test_settings(dir: &std::path::Path, model_length: usize) -> Settings {
    let mut s = Settings::default();
    s.api.bind_address = "127.0.0.1:0".parse().unwrap();
    s.storage.data_dir = dir.to_path_buf();
    s.model.length = model_length;
    for (p, min) in [
        (&mut s.pet.sum, 1),
        (&mut s.pet.update, 3),
        (&mut s.pet.sum2, 1),
    ] {
        p.count.min = min;
        p.time.min = 0.3;
        p.time.max = 20.0;
    }
    s.pet.sum.prob = Some(0.2);
    s.pet.update.prob = Some(0.9);
    s.limits.commit_interval = 0.02;
    s
}

/// Settings in which every participant that draws the update task gets its model in: all
/// non-summers update (probability 1), the update phase lasts at least `update_min` seconds,
/// and a round without a live summer fails within 3 s. What the tests that check the global
/// model against *all* submitted models need.
pub fn every_updater_settings(
    dir: &std::path::Path,
    model_length: usize,
    update_min: f64,
) -> Settings {
    let mut s = test_settings(dir, model_length);
    s.pet.sum.prob = Some(0.25);
    s.pet.update.prob = Some(1.0);
    s.pet.update.time.min = update_min;
    s.pet.sum.time.max = 3.0;
    s.pet.sum2.time.max = 3.0;
    s
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    pub async fn post(&self, body: Vec<u8>) -> u16 {
        let r = self
            .http
            .post(format!("{}/message", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    /// POSTs all bodies concurrently, as independent participants would; all must get 200.
    pub async fn post_all(&self, bodies: Vec<Vec<u8>>) {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (http, url) = (self.http.clone(), format!("{}/message", self.base));
                tokio::spawn(async move {
                    http.post(url)
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
    }

    /// POSTs several participants' messages: each participant's in order (e.g. the chunks
    /// of one Update), the participants concurrently.
    pub async fn post_sequences(&self, sequences: Vec<Vec<Vec<u8>>>) {
        let tasks: Vec<_> = sequences
            .into_iter()
            .map(|bodies| {
                let (http, url) = (self.http.clone(), format!("{}/message", self.base));
                tokio::spawn(async move {
                    for body in bodies {
                        let status = http.post(&url).body(body).send().await.unwrap().status();
                        assert_eq!(status.as_u16(), 200);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// The seeds published for a summer during Sum2 (`GET /seeds?pk=`, the key URL-encoded).
    pub async fn seeds(
        &self,
        summer: &xaynet_core::PublicSigningKey,
    ) -> xaynet_core::UpdateSeedDict {
        use base64::Engine as _;
        let pk = base64::engine::general_purpose::STANDARD.encode(summer.as_bytes());
        let pk = pk
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let (status, body) = self.get(&format!("/seeds?pk={pk}")).await;
        assert_eq!(status, 200, "seeds for this summer");
        update_seed_dict_from_bincode(&body).unwrap()
    }

    pub async fn params(&self) -> RoundParameters {
        RoundParameters::from_bincode(&self.get("/params").await.1).unwrap()
    }

    pub async fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.get("/status").await.1).unwrap()
    }

    /// Polls `/status` until `f` holds (or panics after 30 s).
    pub async fn wait_for(
        &self,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status().await;
            if f(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_phase(&self, round: u64, phase: &str) {
        self.wait_for(&format!("round {round} {phase}"), |s| {
            s["round_id"] == round && s["phase"] == phase
        })
        .await;
    }
}

/// A participant with its key; summers also hold an ephemeral key.
pub struct Participant {
    pub keys: SigningKeyPair,
    pub ephm: EncryptKeyPair,
    pub model: Vec<f32>,
    pub seed: MaskSeed,
}

impl Participant {
    pub fn new(i: u32, model: Vec<f32>) -> Self {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        seed[4] = 0xaa;
        Self {
            keys: SigningKeyPair::from_seed(&seed),
            ephm: EncryptKeyPair::generate(&mut OsRng),
            model,
            seed: MaskSeed::generate(&mut OsRng),
        }
    }

    pub fn task(&self, p: &RoundParameters) -> Task {
        TaskSignatures::sign(&self.keys.secret, &p.seed).task(p.sum, p.update)
    }

    fn message(&self, p: &RoundParameters, tag: Tag, payload: Payload) -> Message {
        Message {
            participant_pk: self.keys.public,
            coordinator_pk: p.pk,
            tag,
            payload,
        }
    }

    pub fn sum_message(&self, p: &RoundParameters) -> Vec<u8> {
        let sigs = TaskSignatures::sign(&self.keys.secret, &p.seed);
        self.message(
            p,
            Tag::Sum,
            Payload::Sum(Sum {
                sum_signature: sigs.sum,
                ephm_pk: self.ephm.public,
            }),
        )
        .seal(&self.keys.secret, &mut OsRng)
    }

    /// The sealed request bodies of this participant's Update (chunked if `max_size`).
    pub async fn update_messages(
        &self,
        c: &Client,
        p: &RoundParameters,
        max_size: Option<usize>,
    ) -> Vec<Vec<u8>> {
        let (status, body) = c.get("/sums").await;
        assert_eq!(status, 200, "sum dict published");
        let sums = sum_dict_from_bincode(&body).unwrap();
        let masked = Masker::new(p.mask_config)
            .mask(&self.seed, Weights::F32(&self.model), &Scalar::unit())
            .unwrap();
        let local_seed_dict = sums
            .iter()
            .map(|(pk, epk)| (*pk, self.seed.encrypt(epk, &mut OsRng)))
            .collect();
        let sigs = TaskSignatures::sign(&self.keys.secret, &p.seed);
        let msg = self.message(
            p,
            Tag::Update,
            Payload::Update(Update {
                sum_signature: sigs.sum,
                update_signature: sigs.update,
                masked_model: masked,
                local_seed_dict,
            }),
        );
        encode(&msg, &self.keys.secret, max_size, 7)
            .unwrap()
            .into_iter()
            .map(|signed| p.pk.seal(&signed, &mut OsRng))
            .collect()
    }

    pub async fn sum2_message(&self, c: &Client, p: &RoundParameters) -> Vec<u8> {
        let seeds = c.seeds(&self.keys.public).await;
        let len = p.model_length as usize;
        let (vg, ug) = (
            Group::new(p.mask_config.vect),
            Group::new(p.mask_config.unit),
        );
        let mut agg = Aggregation::new(p.mask_config, len);
        for enc in seeds.values() {
            let seed = enc.decrypt(&self.ephm).unwrap();
            agg.aggregate(seed.derive_mask(len, &vg, &ug)).unwrap();
        }
        let sigs = TaskSignatures::sign(&self.keys.secret, &p.seed);
        self.message(
            p,
            Tag::Sum2,
            Payload::Sum2(Sum2 {
                sum_signature: sigs.sum,
                model_mask: agg.sum().unwrap().clone(),
            }),
        )
        .seal(&self.keys.secret, &mut OsRng)
    }
}

/// Participants split by role for the round `p`: (summers, updaters).
pub fn roles<'a>(
    ps: &'a [Participant],
    p: &RoundParameters,
) -> (Vec<&'a Participant>, Vec<&'a Participant>) {
    let mut summers = Vec::new();
    let mut updaters = Vec::new();
    for x in ps {
        match x.task(p) {
            Task::Sum => summers.push(x),
            Task::Update => updaters.push(x),
            Task::None => {}
        }
    }
    (summers, updaters)
}

/// The summers the coordinator accepted (those in the published sum dictionary). Sum messages
/// that arrive after the phase's minimum time and count were met are refused, so under
/// concurrency not every eligible summer makes it.
pub async fn accepted_summers<'a>(c: &Client, summers: &[&'a Participant]) -> Vec<&'a Participant> {
    let (status, body) = c.get("/sums").await;
    assert_eq!(status, 200, "sum dict published");
    let sums = sum_dict_from_bincode(&body).unwrap();
    summers
        .iter()
        .copied()
        .filter(|s| sums.contains_key(&s.keys.public))
        .collect()
}

/// The updaters the coordinator accepted, read from `summer`'s seed dictionary during Sum2
/// (every accepted update sealed a seed to every summer). Update messages that arrive after the
/// phase's minimum time and count were met are refused, so not every updater makes it.
pub async fn accepted_updaters<'a>(
    c: &Client,
    summer: &Participant,
    updaters: &[&'a Participant],
) -> Vec<&'a Participant> {
    let seeds = c.seeds(&summer.keys.public).await;
    updaters
        .iter()
        .copied()
        .filter(|u| seeds.contains_key(&u.keys.public))
        .collect()
}

/// The plain average of the updaters' models.
pub fn average(updaters: &[&Participant]) -> Vec<f32> {
    let n = updaters.len() as f64;
    (0..updaters[0].model.len())
        .map(|i| (updaters.iter().map(|u| u.model[i] as f64).sum::<f64>() / n) as f32)
        .collect()
}

/// Decodes a `/model.bin` body of f32 weights.
pub fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Asserts that the served global model is the plain average of the updaters' models within
/// the masking precision.
pub fn assert_average(raw: &[u8], updaters: &[&Participant]) {
    let got = f32s(raw);
    let want = average(updaters);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-6,
            "global model {g} vs plain average {w}"
        );
    }
}

pub fn model(i: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|j| ((i as usize * 31 + j * 7) % 200) as f32 / 100.0 - 1.0)
        .collect()
}
