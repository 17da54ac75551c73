//! Many participants in one process, as `xaynet demo` and `xaynet simulate` run them: SDK
//! runners over real HTTP that share one connection pool and one `/params` poller (a fleet of
//! simulated devices need not ask the same question a thousand times a second), plus a round
//! monitor that reads the coordinator's `/status`.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use tokio::sync::watch;
use xaynet_core::crypto::{sha256, PublicSigningKey, SigningKeyPair};
use xaynet_core::{Model, RoundParameters, SumDict, UpdateSeedDict};
use xaynet_sdk::{HttpClient, RequestError, Transport};

type ParamsCell = Option<Result<RoundParameters, RequestError>>;

/// A participant's transport in a fleet: `/params` from the shared poller, everything else
/// over the shared HTTP client.
#[derive(Clone)]
pub struct FleetTransport {
    http: HttpClient,
    params: watch::Receiver<ParamsCell>,
}

impl Transport for FleetTransport {
    async fn params(&self) -> Result<RoundParameters, RequestError> {
        let cached = self.params.borrow().clone();
        match cached {
            Some(r) => r,
            None => self.http.params().await,
        }
    }

    async fn sums(&self) -> Result<Option<SumDict>, RequestError> {
        self.http.sums().await
    }

    async fn seeds(&self, pk: PublicSigningKey) -> Result<Option<UpdateSeedDict>, RequestError> {
        self.http.seeds(pk).await
    }

    async fn send(&self, body: Bytes) -> Result<(), RequestError> {
        self.http.send(body).await
    }

    async fn model(&self) -> Result<Option<Model>, RequestError> {
        self.http.model().await
    }
}

/// Starts the shared `/params` poller (every `interval`) and returns the transport the fleet's
/// participants clone. The poller stops when every transport is dropped.
pub fn transport(http: HttpClient, interval: Duration) -> FleetTransport {
    let (tx, rx) = watch::channel(None);
    let poller = http.clone();
    tokio::spawn(async move {
        loop {
            let r = poller.params().await;
            if tx.send(Some(r)).is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    FleetTransport { http, params: rx }
}

/// The key pair of simulated participant `i` (deterministic, so runs are comparable).
pub fn keys(i: usize) -> SigningKeyPair {
    SigningKeyPair::from_seed(&sha256(format!("xaynet fleet participant {i}").as_bytes()))
}

/// One phase change seen by the [`Monitor`].
#[derive(Clone, Debug)]
pub struct PhaseChange {
    /// When it was seen.
    pub at: Instant,
    /// The round.
    pub round_id: u64,
    /// The new phase (`sum`, `update`, `sum2`, `unmask`, `failure`, `idle`).
    pub phase: String,
}

/// A finished round as the monitor saw it.
#[derive(Clone, Debug)]
pub struct RoundReport {
    /// The round.
    pub round_id: u64,
    /// Its first phase change to the next round's first phase change.
    pub wall: Duration,
    /// Time in each phase, in order (`idle`, `sum`, `update`, `sum2`, `unmask`, `failure`).
    pub phases: Vec<(String, Duration)>,
    /// Accepted updates.
    pub updates: u64,
    /// Whether it produced a global model (else it failed).
    pub completed: bool,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// Watches the coordinator's `/status` (polled every few milliseconds) and cuts the phase
/// changes into rounds.
pub struct Monitor {
    http: reqwest::Client,
    url: String,
    last: Option<(u64, String)>,
    changes: Vec<PhaseChange>,
    updates: u64,
    model_round: Option<u64>,
    failure: Option<String>,
}

impl Monitor {
    /// A monitor for the coordinator at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/status", url.trim_end_matches('/')),
            last: None,
            changes: Vec::new(),
            updates: 0,
            model_round: None,
            failure: None,
        }
    }

    /// Polls until a round ends and returns it (rounds already running when the monitor
    /// started are skipped). Gives up after `timeout`.
    pub async fn next_round(&mut self, timeout: Duration) -> anyhow::Result<RoundReport> {
        let deadline = Instant::now() + timeout;
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no round finished within {} s",
                timeout.as_secs()
            );
            let body = self
                .http
                .get(&self.url)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("GET {}: {e}", self.url))?
                .error_for_status()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "GET {}: {e} (timing needs our coordinator's /status)",
                        self.url
                    )
                })?
                .bytes()
                .await?;
            let status: serde_json::Value = serde_json::from_slice(&body)
                .with_context(|| format!("GET {}: not JSON", self.url))?;
            let now = Instant::now();
            let round_id = status["round_id"].as_u64().unwrap_or(0);
            let phase = status["phase"].as_str().unwrap_or("").to_string();
            if let Some(r) = status["global_model_round_id"].as_u64() {
                self.model_round = Some(r);
            }
            if let Some(f) = status["last_failure"].as_str() {
                self.failure = Some(f.to_string());
            }
            let key = (round_id, phase.clone());
            if self.last.as_ref() != Some(&key) {
                let previous_round = self.last.as_ref().map(|(r, _)| *r);
                self.last = Some(key);
                self.changes.push(PhaseChange {
                    at: now,
                    round_id,
                    phase: phase.clone(),
                });
                if previous_round.is_some_and(|r| r != round_id) {
                    if let Some(report) = self.cut(round_id, &status["previous_round"]) {
                        return Ok(report);
                    }
                }
            }
            if phase == "update" || phase == "sum2" {
                self.updates = self
                    .updates
                    .max(status["counts"]["update"]["accepted"].as_u64().unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The changes before the first change of `new_round` form the finished round; `None`
    /// when its start was not seen (the monitor started mid-round). `finished` is the
    /// coordinator's `previous_round` (final counts; phases may end between two polls).
    fn cut(&mut self, new_round: u64, finished: &serde_json::Value) -> Option<RoundReport> {
        let split = self.changes.iter().position(|c| c.round_id == new_round)?;
        let round: Vec<PhaseChange> = self.changes.drain(..split).collect();
        let updates = std::mem::take(&mut self.updates);
        let end = self.changes.first()?.at;
        // A round whose start the monitor did not see is not reported.
        if !round.iter().any(|c| c.phase == "sum" || c.phase == "idle") {
            return None;
        }
        let mut phases = Vec::new();
        for (i, c) in round.iter().enumerate() {
            let until = round.get(i + 1).map(|n| n.at).unwrap_or(end);
            phases.push((c.phase.clone(), until - c.at));
        }
        let round_id = round[0].round_id;
        let updates = match finished["round_id"].as_u64() {
            Some(r) if r == round_id => finished["counts"]["update"]["accepted"]
                .as_u64()
                .unwrap_or(updates),
            _ => updates,
        };
        let completed = self.model_round == Some(round_id);
        Some(RoundReport {
            round_id,
            wall: end - round[0].at,
            phases,
            updates,
            completed,
            failure: if completed {
                None
            } else {
                self.failure.clone()
            },
        })
    }
}

/// The median of some durations.
pub fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}
