//! `xaynet demo`: a real federated training in one process, over real HTTP on 127.0.0.1.
//!
//! A coordinator (embedded storage in a temporary directory, mask config F32/B0) and N SDK
//! participants train a softmax-regression digit classifier ([`crate::learn`]) on a non-IID
//! split of the digits data. Each round every updater downloads the global model (`GET /model`),
//! trains locally and submits it with the scalar `n_i / n_max` (its sample count over the
//! largest participant's, so the weighted average is FedAvg and nothing is clamped). After each
//! round the demo compares the published (masked) global model with plain federated averaging
//! of the same accepted local models, and at the end with a centrally trained model.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use xaynet_core::{Model, PublicSigningKey, RoundParameters};
use xaynet_sdk::{
    App, HttpClient, LocalModel, ModelUpdate, Notice, Participant, Runner, Settings, Transport,
};

use crate::fleet;
use crate::learn::{self, Data, MODEL_LEN};

/// Options of `xaynet demo` (see `--help`).
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Number of participants (each holds a non-IID share of the training data).
    #[arg(short = 'n', long, default_value_t = 20)]
    pub participants: usize,
    /// Global rounds to train (failed rounds, e.g. without a summer, are not counted).
    #[arg(short, long, default_value_t = 60)]
    pub rounds: usize,
    /// Local full-batch gradient steps per round.
    #[arg(long, default_value_t = 10)]
    pub local_steps: usize,
    /// Learning rate of the first round; it decays linearly to a tenth by the last round.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f32,
    /// Seed of the data shuffle and split.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the accuracy plot (SVG).
    #[arg(long, value_name = "FILE", default_value = "xaynet-demo.svg")]
    pub plot: PathBuf,
}

/// What the participants and the demo loop share.
#[derive(Default)]
struct Shared {
    /// Round seed (hex) → updater → (local model, scalar) it submitted.
    local: HashMap<String, HashMap<PublicSigningKey, (Vec<f32>, f64)>>,
    /// Round seed (hex) → the updaters a summer received seeds from (the accepted updates).
    accepted: HashMap<String, BTreeSet<PublicSigningKey>>,
}

struct DemoApp {
    pk: PublicSigningKey,
    /// The latest global model.
    global: Option<Vec<f32>>,
    data: Arc<Data>,
    scalar: f64,
    shared: Arc<Mutex<Shared>>,
    steps: usize,
    rate: f32,
    rounds: usize,
    /// Rounds completed so far (the operator's announcement, for the learning-rate schedule).
    completed: Arc<AtomicUsize>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl App for DemoApp {
    fn wants_global_model(&self) -> bool {
        true
    }

    async fn global_model(&mut self, model: Option<Model>) {
        self.global = model
            .and_then(|m| m.to_f32().ok())
            .filter(|w| w.len() == MODEL_LEN);
    }

    async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
        // Start from the global model the runner fetched at this round's start (zeros before
        // the first one).
        let mut w = self.global.clone().unwrap_or_else(|| vec![0.0; MODEL_LEN]);
        let round = self.completed.load(Ordering::Relaxed);
        let rate = learn::rate_at(self.rate, round, self.rounds);
        learn::train(&mut w, &self.data, self.steps, rate);
        let key = hex(params.seed.as_bytes());
        if let Ok(mut s) = self.shared.lock() {
            s.local
                .entry(key)
                .or_default()
                .insert(self.pk, (w.clone(), self.scalar));
        }
        Some(ModelUpdate {
            model: LocalModel::F32(w),
            scalar: Some(self.scalar),
        })
    }

    fn notice(&mut self, participant: &Participant, notice: &Notice) {
        if let (Notice::SeedsReceived(keys), Some(p)) = (notice, participant.round_params()) {
            if let Ok(mut s) = self.shared.lock() {
                s.accepted
                    .insert(hex(p.seed.as_bytes()), keys.iter().copied().collect());
            }
        }
    }
}

fn coordinator_settings(
    args: &DemoArgs,
    dir: &std::path::Path,
) -> xaynet_server::settings::Settings {
    let mut s = xaynet_server::settings::Settings::default();
    s.api.bind_address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    s.storage.data_dir = dir.to_path_buf();
    s.model.length = MODEL_LEN;
    s.log.filter = "warn".into();
    s.pet.sum.prob = Some(0.2);
    s.pet.sum.count.min = 1;
    s.pet.sum.count.max = 2;
    s.pet.sum.time.min = 0.1;
    // Without a summer the round fails fast and a new one starts.
    s.pet.sum.time.max = 2.0;
    s.pet.update.prob = Some(1.0);
    s.pet.update.count.min = 3;
    s.pet.update.count.max = args.participants as u64;
    s.pet.update.time.min = 0.5;
    s.pet.update.time.max = 10.0;
    s.pet.sum2.count.min = 1;
    s.pet.sum2.count.max = 2;
    s.pet.sum2.time.min = 0.0;
    s.pet.sum2.time.max = 10.0;
    s
}

/// Shards of sorted training data per participant (see [`learn::split_non_iid`]).
const SHARDS_EACH: usize = 3;

/// Full-batch steps of the central baseline (its test accuracy has converged by then).
const CENTRAL_STEPS: usize = 1000;

/// One evaluated round.
struct RoundResult {
    masked_accuracy: f64,
    plain_accuracy: f64,
    max_diff: f64,
}

/// Runs `xaynet demo`.
pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.participants >= 4, "--participants must be at least 4");
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (train, test) = learn::digits(args.seed, 0.2);
    let parts = learn::split_non_iid(&train, args.participants, SHARDS_EACH, args.seed + 1);
    let n_max = parts.iter().map(Data::len).max().unwrap_or(1).max(1);
    println!(
        "digits: {} training and {} test images; {} participants with {SHARDS_EACH} shards of sorted digits each (non-IID), softmax regression with {} weights",
        train.len(),
        test.len(),
        args.participants,
        MODEL_LEN
    );

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let running = xaynet_server::server::start(coordinator_settings(&args, dir.path()))
        .await
        .context("could not start the coordinator")?;
    let url = format!("http://{}", running.addr);
    println!(
        "coordinator on {url} (embedded storage in {})",
        dir.path().display()
    );

    let settings = Settings {
        poll_interval_ms: 50,
        retry_min_ms: 50,
        retry_max_ms: 1000,
        ..Settings::default()
    };
    let http = HttpClient::new(&url)?;
    let transport = fleet::transport(http.clone(), Duration::from_millis(20));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let completed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, data) in parts.into_iter().enumerate() {
        let keys = fleet::keys(i);
        let app = DemoApp {
            scalar: data.len() as f64 / n_max as f64,
            data: Arc::new(data),
            global: None,
            shared: shared.clone(),
            steps: args.local_steps,
            rate: args.rate,
            rounds: args.rounds,
            completed: completed.clone(),
            pk: keys.public,
        };
        let p = Participant::new(keys, settings.clone())?;
        let t = transport.clone();
        tasks.push(tokio::spawn(async move {
            Runner::new(p, t, app)
                .run(std::future::pending::<()>())
                .await;
        }));
    }

    let multi = MultiProgress::new();
    let rounds_bar = multi.add(ProgressBar::new(args.rounds as u64));
    rounds_bar.set_style(
        ProgressStyle::with_template("rounds {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let phase_bar = multi.add(ProgressBar::new_spinner());
    phase_bar.enable_steady_tick(Duration::from_millis(100));

    let mut published = running.published.clone();
    let mut last_model: Option<String> = None;
    let mut last_failure: Option<String> = None;
    let mut results: Vec<RoundResult> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30 + 10 * args.rounds as u64);
    while results.len() < args.rounds {
        anyhow::ensure!(Instant::now() < deadline, "the training takes too long");
        let _ = tokio::time::timeout(Duration::from_millis(100), published.changed()).await;
        let (round_id, phase, model, failure) = {
            let p = published.borrow();
            (
                p.round_id,
                p.ctx.phase.name(),
                p.model.clone(),
                p.last_failure.clone(),
            )
        };
        phase_bar.set_message(format!("round {round_id}: {phase} phase"));
        if failure.is_some() && failure != last_failure {
            let reason = failure.clone().unwrap_or_default();
            multi.suspend(|| println!("round failed ({reason}); the coordinator starts a new one"));
        }
        last_failure = failure;
        let Some(model) = model else { continue };
        if last_model.as_deref() == Some(model.id.as_str()) {
            continue;
        }
        last_model = Some(model.id.clone());
        let seed = model.id.split('_').nth(1).unwrap_or_default().to_string();
        // The global model as any participant sees it: over HTTP, exact rationals.
        let global = http
            .model()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("the coordinator published no model")?;
        let exact = global.to_f64().context("global model out of range")?;
        let masked: Vec<f32> = global.to_f32().context("global model out of range")?;
        let plain = plain_fedavg(&shared, &seed)?;
        let max_diff = exact
            .iter()
            .zip(&plain)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let plain_f32: Vec<f32> = plain.iter().map(|v| *v as f32).collect();
        let (acc, loss) = learn::evaluate(&masked, &test);
        let (plain_acc, _) = learn::evaluate(&plain_f32, &test);
        let updates = shared
            .lock()
            .map(|s| s.accepted.get(&seed).map_or(0, BTreeSet::len))
            .unwrap_or(0);
        results.push(RoundResult {
            masked_accuracy: acc,
            plain_accuracy: plain_acc,
            max_diff,
        });
        completed.store(results.len(), Ordering::Relaxed);
        rounds_bar.set_position(results.len() as u64);
        rounds_bar.set_message(format!("accuracy {:.1}%", 100.0 * acc));
        multi.suspend(|| {
            println!(
                "round {:>3} ({} updates): accuracy {:5.1}% loss {:.3} | plain FedAvg {:5.1}% | max |masked − plain| {:.1e}",
                model.round_id,
                updates,
                100.0 * acc,
                loss,
                100.0 * plain_acc,
                max_diff
            );
            let _ = std::io::stdout().flush();
        });
    }
    phase_bar.finish_and_clear();
    rounds_bar.finish_and_clear();
    for t in &tasks {
        t.abort();
    }
    running.stop().await;

    // The same classifier trained centrally on all training data to convergence (the same
    // decaying schedule, stretched over CENTRAL_STEPS full-batch steps).
    let mut central = vec![0f32; MODEL_LEN];
    for step in 0..CENTRAL_STEPS {
        let rate = learn::rate_at(args.rate, step, CENTRAL_STEPS);
        learn::train(&mut central, &train, 1, rate);
    }
    let (central_acc, central_loss) = learn::evaluate(&central, &test);
    let last = results.last().context("no round finished")?;
    let max_diff = results.iter().map(|r| r.max_diff).fold(0.0, f64::max);
    write_plot(&args.plot, &results, central_acc)?;
    println!();
    println!(
        "after {} rounds ({:.0} s):",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  masked federated model   accuracy {:5.1}%",
        100.0 * last.masked_accuracy
    );
    println!(
        "  plain federated average  accuracy {:5.1}%   (max |masked − plain| over all rounds: {:.1e})",
        100.0 * last.plain_accuracy,
        max_diff
    );
    println!(
        "  centrally trained model  accuracy {:5.1}%   (loss {:.3}; {CENTRAL_STEPS} full-batch steps on all training data)",
        100.0 * central_acc,
        central_loss,
    );
    let gap = 100.0 * (last.masked_accuracy - central_acc);
    println!(
        "  masked − central: {gap:+.1} percentage points ({} 1 point)",
        if gap.abs() <= 1.0 {
            "within"
        } else {
            "NOT within"
        }
    );
    println!("accuracy plot written to {}", args.plot.display());
    anyhow::ensure!(
        max_diff <= 1e-6,
        "the masked global model differs from plain federated averaging by {max_diff:e}"
    );
    Ok(())
}

/// Plain (unmasked) federated averaging of the local models the coordinator accepted in the
/// round with this seed: `Σ s_j w_j / Σ s_j` in f64.
fn plain_fedavg(shared: &Mutex<Shared>, seed: &str) -> anyhow::Result<Vec<f64>> {
    let s = shared
        .lock()
        .map_err(|_| anyhow::anyhow!("a participant panicked"))?;
    let accepted = s
        .accepted
        .get(seed)
        .context("no summer reported the accepted updates of this round")?;
    let local = s
        .local
        .get(seed)
        .context("no local models recorded for this round")?;
    let mut sum = vec![0f64; MODEL_LEN];
    let mut weight = 0f64;
    for pk in accepted {
        let (w, scalar) = local
            .get(pk)
            .context("an accepted update that no participant of this demo made")?;
        for (acc, v) in sum.iter_mut().zip(w) {
            *acc += scalar * f64::from(*v);
        }
        weight += scalar;
    }
    anyhow::ensure!(weight > 0.0, "no accepted updates");
    Ok(sum.into_iter().map(|v| v / weight).collect())
}

/// Accuracy per round as an SVG line chart, with the central model as a dashed line.
fn write_plot(path: &std::path::Path, results: &[RoundResult], central: f64) -> anyhow::Result<()> {
    let (w, h, left, bottom, top, right) = (720.0, 420.0, 60.0, 50.0, 40.0, 20.0);
    let n = results.len().max(2) as f64;
    let x = |i: f64| left + (i - 1.0) / (n - 1.0) * (w - left - right);
    let y = |acc: f64| top + (1.0 - acc) * (h - top - bottom);
    let line = |f: &dyn Fn(&RoundResult) -> f64| {
        results
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", x(i as f64 + 1.0), y(f(r))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="15">xaynet demo: test accuracy per round (digits, softmax regression)</text>
"#
    );
    for k in 0..=10 {
        let acc = k as f64 / 10.0;
        svg.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>\n",
            w - right,
            y(acc),
            y(acc),
            left - 6.0,
            y(acc) + 4.0,
            k * 10
        ));
    }
    let step = ((n / 10.0).ceil() as usize).max(1);
    for i in (1..=results.len()).step_by(step) {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{i}</text>\n",
            x(i as f64),
            h - bottom + 18.0
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">round</text>\n",
        (w + left) / 2.0,
        h - 10.0
    ));
    svg.push_str(&format!(
        "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\" stroke-dasharray=\"6 4\"/>\n",
        w - right,
        y(central),
        y(central)
    ));
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#f28e2b\" stroke-width=\"4\" points=\"{}\"/>\n",
        line(&|r| r.plain_accuracy)
    ));
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#4e79a7\" stroke-width=\"2\" points=\"{}\"/>\n",
        line(&|r| r.masked_accuracy)
    ));
    let legend = [
        ("#4e79a7", "masked federated model (published)"),
        ("#f28e2b", "plain federated averaging"),
        (
            "#888",
            &format!("central training ({:.1}%)", 100.0 * central) as &str,
        ),
    ];
    for (k, (color, label)) in legend.iter().enumerate() {
        let ly = h - bottom - 60.0 + 18.0 * k as f64;
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{label}</text>\n",
            w - 300.0,
            w - 275.0,
            w - 268.0,
            ly + 4.0
        ));
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))
}
