//! `xaynet simulate`: a load generator and our benchmark harness. N participants (the SDK's
//! state machine and runner, over real HTTP) with models of length L against a coordinator,
//! timed round by round.

use std::time::Duration;

use anyhow::Context;
use xaynet_core::RoundParameters;
use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Participant, Runner, Settings};

use xaynet_server::metrics::thread_cpu_seconds;

use crate::fleet::{self, median, Monitor, RoundReport};

/// Options of `xaynet simulate` (see `--help`).
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Coordinator to load. Without it an in-process coordinator (embedded storage in a
    /// temporary directory) is started on 127.0.0.1 with settings for the workload below.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Number of participants.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub participants: usize,
    /// Model length (f32 weights). With --url it must match the coordinator's.
    #[arg(short = 'l', long, default_value_t = 100_000)]
    pub model_length: usize,
    /// Rounds to time.
    #[arg(short, long, default_value_t = 5)]
    pub rounds: usize,
    /// Rounds run first and not counted in the median (connection set-up, first allocations).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// In-process coordinator: summers accepted per round.
    #[arg(long, default_value_t = 3)]
    pub summers: u64,
    /// In-process coordinator: updates accepted per round.
    #[arg(long, default_value_t = 20)]
    pub updaters: u64,
    /// How often a waiting participant asks again, in ms (the shared /params poller runs
    /// twice as often).
    #[arg(long, default_value_t = 20)]
    pub poll_ms: u64,
    /// Largest request in bytes (longer messages are chunked); 0 never chunks.
    #[arg(long, default_value_t = xaynet_sdk::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,
    /// In-process coordinator: a phase that has not got enough messages after this many
    /// seconds fails the round (it is reported and not counted; a new round starts).
    #[arg(long, default_value_t = 10.0)]
    pub phase_timeout: f64,
    /// Give up when no round ends within this many seconds.
    #[arg(long, default_value_t = 120)]
    pub round_timeout: u64,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
}

/// A simulated device: a fixed pseudo-random model in [−1, 1], computed when asked for.
struct SimApp {
    i: usize,
}

impl App for SimApp {
    async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
        let i = self.i as u64;
        let weights = (0..params.model_length)
            .map(|j| ((i * 7919 + j * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        Some(ModelUpdate {
            model: LocalModel::F32(weights),
            scalar: None,
        })
    }
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        // Keep blocking threads alive so their CPU time stays on the books.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Coordinator settings for the workload: counts fixed to the requested summers and updaters,
/// probabilities so that enough participants are eligible with high probability.
fn coordinator_settings(
    args: &SimulateArgs,
    dir: &std::path::Path,
) -> xaynet_server::settings::Settings {
    let mut s = xaynet_server::settings::Settings::default();
    s.api.bind_address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    s.storage.data_dir = dir.to_path_buf();
    s.model.length = args.model_length;
    s.log.filter = "warn".into();
    let n = args.participants.max(1) as f64;
    // Expect about 3× the summers and comfortably more eligible updaters than needed (the
    // number needed plus three standard deviations and three): a shortfall, which fails the
    // round, is then rare.
    let sum_prob = (3.0 * args.summers as f64 / n).clamp(0.0001, 0.5);
    let k = args.updaters as f64;
    let expected = (1.6 * k).max(k + 3.0 * k.sqrt() + 3.0);
    let update_prob = (expected / (n * (1.0 - sum_prob))).clamp(0.0001, 1.0);
    s.pet.sum.prob = Some(sum_prob);
    s.pet.update.prob = Some(update_prob);
    s.pet.sum.count.min = 1;
    s.pet.sum.count.max = args.summers;
    s.pet.update.count.min = args.updaters;
    s.pet.update.count.max = args.updaters;
    s.pet.sum2.count.min = 1;
    s.pet.sum2.count.max = args.summers;
    for p in [&mut s.pet.sum, &mut s.pet.update, &mut s.pet.sum2] {
        p.time.min = 0.0;
        p.time.max = args.phase_timeout;
    }
    // The sum phase waits a moment for more than one summer.
    s.pet.sum.time.min = 0.1;
    s
}

/// Runs `xaynet simulate`.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.participants > 0, "--participants must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let settings = Settings {
        poll_interval_ms: args.poll_ms.max(1),
        retry_min_ms: 50,
        retry_max_ms: 2000,
        max_message_size: (args.max_message_size > 0).then_some(args.max_message_size),
        ..Settings::default()
    };
    settings
        .validate()
        .context("invalid participant settings")?;

    // Coordinator and participants on separate runtimes (thread-name prefixes), so that each
    // side's CPU time can be read off its threads.
    let coord_rt = runtime("xn-coord", 2)?;
    let client_rt = runtime("xn-client", 2)?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let running = match &args.url {
        Some(_) => None,
        None => {
            let s = coordinator_settings(&args, dir.path());
            Some(
                coord_rt
                    .block_on(xaynet_server::server::start(s))
                    .context("could not start the in-process coordinator")?,
            )
        }
    };
    let url = match (&args.url, &running) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(r)) => format!("http://{}", r.addr),
        (None, None) => unreachable!("one of the two is set"),
    };
    eprintln!(
        "simulating {} participants, model length {}, against {url}{}",
        args.participants,
        args.model_length,
        if running.is_some() {
            format!(
                " (in-process, {} summers and {} updaters per round)",
                args.summers, args.updaters
            )
        } else {
            String::new()
        }
    );

    let reports = client_rt.block_on(async {
        let http = HttpClient::new(&url)?;
        let transport = fleet::transport(http, Duration::from_millis((args.poll_ms / 2).max(1)));
        let mut tasks = Vec::with_capacity(args.participants);
        for i in 0..args.participants {
            let p = Participant::new(fleet::keys(i), settings.clone())?;
            let t = transport.clone();
            tasks.push(tokio::spawn(async move {
                Runner::new(p, t, SimApp { i })
                    .run(std::future::pending::<()>())
                    .await;
            }));
        }
        let mut monitor = Monitor::new(&url);
        let mut reports = Vec::new();
        let (mut coord_cpu, mut client_cpu) = cpu();
        let total = args.warmup + args.rounds;
        let completed = |reports: &Vec<Line>| reports.iter().filter(|l| l.round.completed).count();
        while completed(&reports) < total {
            let failed = reports.len() - completed(&reports);
            anyhow::ensure!(
                failed <= args.rounds,
                "{failed} rounds failed; the coordinator does not get enough participants"
            );
            let r = monitor
                .next_round(Duration::from_secs(args.round_timeout + 10))
                .await?;
            let (c, p) = cpu();
            let line = Line {
                round: r,
                coordinator_cpu: c.zip(coord_cpu).map(|(a, b)| a - b),
                client_cpu: p.zip(client_cpu).map(|(a, b)| a - b),
                warmup: completed(&reports) < args.warmup,
            };
            (coord_cpu, client_cpu) = (c, p);
            eprintln!("{}", line.describe(running.is_some()));
            reports.push(line);
        }
        for t in &tasks {
            t.abort();
        }
        anyhow::Ok(reports)
    })?;
    if let Some(r) = running {
        coord_rt.block_on(r.stop());
    }

    let timed: Vec<&Line> = reports
        .iter()
        .filter(|l| !l.warmup && l.round.completed)
        .collect();
    let walls: Vec<Duration> = timed.iter().map(|l| l.round.wall).collect();
    let failed = reports.iter().filter(|l| !l.round.completed).count();
    let med = median(walls).unwrap_or_default();
    println!(
        "median round time {:.3} s over {} rounds ({} failed and not counted); participants {}, model length {}",
        med.as_secs_f64(),
        timed.len(),
        failed,
        args.participants,
        args.model_length
    );
    if let Some(path) = &args.json {
        let rounds: Vec<serde_json::Value> = reports.iter().map(Line::json).collect();
        let doc = serde_json::json!({
            "participants": args.participants,
            "model_length": args.model_length,
            "summers": args.summers,
            "updaters": args.updaters,
            "in_process": args.url.is_none(),
            "median_round_s": med.as_secs_f64(),
            "rounds": rounds,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// CPU seconds so far of (coordinator threads, participant threads).
fn cpu() -> (Option<f64>, Option<f64>) {
    (
        thread_cpu_seconds("xn-coord"),
        thread_cpu_seconds("xn-client"),
    )
}

struct Line {
    round: RoundReport,
    coordinator_cpu: Option<f64>,
    client_cpu: Option<f64>,
    warmup: bool,
}

impl Line {
    fn describe(&self, in_process: bool) -> String {
        let r = &self.round;
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(name, d)| format!("{name} {:.3}", d.as_secs_f64()))
            .collect();
        let update_s = r
            .phases
            .iter()
            .filter(|(n, _)| n == "update")
            .map(|(_, d)| d.as_secs_f64())
            .sum::<f64>();
        let rate = if update_s > 0.0 {
            format!("{:.0} updates/s", r.updates as f64 / update_s)
        } else {
            "-".into()
        };
        let cpu = |v: Option<f64>| v.map_or("n/a".into(), |s| format!("{s:.2} s"));
        format!(
            "round {:>3}{}: {:.3} s [{}] {} updates, {rate}, cpu coordinator {} participants {}{}",
            r.round_id,
            if self.warmup { " (warm-up)" } else { "" },
            r.wall.as_secs_f64(),
            phases.join(", "),
            r.updates,
            if in_process {
                cpu(self.coordinator_cpu)
            } else {
                "n/a (remote)".into()
            },
            cpu(self.client_cpu),
            match &r.failure {
                Some(f) if !r.completed => format!(" FAILED: {f}"),
                _ => String::new(),
            }
        )
    }

    fn json(&self) -> serde_json::Value {
        let r = &self.round;
        serde_json::json!({
            "round_id": r.round_id,
            "warmup": self.warmup,
            "wall_s": r.wall.as_secs_f64(),
            "phases": r.phases.iter().map(|(n, d)| serde_json::json!([n, d.as_secs_f64()])).collect::<Vec<_>>(),
            "updates": r.updates,
            "completed": r.completed,
            "coordinator_cpu_s": self.coordinator_cpu,
            "participants_cpu_s": self.client_cpu,
        })
    }
}
