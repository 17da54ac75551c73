//! `xaynet`: the one binary users run.
//!
//! `xaynet serve` runs a coordinator; `xaynet keygen` makes a participant key;
//! `xaynet model get` downloads a coordinator's global model; `xaynet simulate` runs many SDK
//! participants against a coordinator and times its rounds.

mod demo;
mod fleet;
mod learn;
mod simulate;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use xaynet_server::settings::Settings;

/// mimalloc keeps the memory of freed request buffers for reuse instead of handing it back to
/// the system and faulting it in again for the next message: about 7% less coordinator CPU
/// when ingesting 6 MB updates (`BENCHMARKS.md`, ingest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xaynet",
    version,
    about = "Masked cross-device federated learning (Xaynet PET protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a coordinator.
    ///
    /// With no settings file the coordinator listens on 127.0.0.1:8081, keeps its state in
    /// ./xaynet-data (embedded storage, no service needed) and runs rounds for a 4-weight
    /// model. Every key of the settings file can also be set with an environment variable
    /// XAYNET__SECTION__KEY (double underscores), e.g. XAYNET__PET__SUM__PROB=0.01 or
    /// XAYNET__MODEL__LENGTH=1000. Invalid settings stop the coordinator with a message that
    /// names the key and the rule.
    #[command(after_long_help = concat!(
        "SETTINGS FILE (every key, with its default; this is configs/example.toml):\n\n",
        include_str!("../../../configs/example.toml")
    ))]
    Serve {
        /// Settings file (TOML). Without it, defaults and XAYNET__* variables apply.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Generate a participant's Ed25519 key pair.
    ///
    /// Prints the public key (hex and base64, the form `/seeds?pk=` takes). The secret key is
    /// written as 128 hex digits (libsodium's 64-byte layout: seed ‖ public key) to FILE,
    /// readable only by its owner; without --out it is printed, with a warning.
    Keygen {
        /// Where to write the secret key (refuses to overwrite an existing file).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Train a real model with federated learning on this machine (about a minute).
    ///
    /// Starts a coordinator (embedded storage in a temporary directory) and N participants
    /// in this process, talking over real HTTP on 127.0.0.1. They train a softmax-regression
    /// classifier of handwritten digits (the UCI digits data, bundled) on a non-IID split:
    /// each participant holds mostly two digits. Every round prints the test accuracy and loss
    /// of the masked global model next to plain federated averaging of the same local models
    /// and their largest difference; the end compares with central training and writes an
    /// accuracy plot (SVG).
    Demo(demo::DemoArgs),
    /// Load a coordinator with many participants and time its rounds (the benchmark harness).
    ///
    /// Runs N participants (the SDK's state machine over real HTTP) with models of length L
    /// against --url, or against an in-process coordinator configured for the workload, and
    /// prints each round's wall time, time per phase, accepted updates per second and the CPU
    /// time of coordinator and participants; then the median round time. The participants
    /// share one connection pool and one /params poller.
    Simulate(simulate::SimulateArgs),
    /// Global model commands.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download the latest global model and print it as JSON, or save its raw bytes.
    Get {
        /// Base URL of the coordinator.
        #[arg(short, long, default_value = "http://127.0.0.1:8081")]
        url: String,
        /// Save the raw little-endian weights (`/model.bin`) to FILE instead of printing.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Use the v1 endpoint (`/model`, exact rationals, any Xaynet 0.11 coordinator) and
        /// print the weights as correctly rounded f64.
        #[arg(long)]
        v1: bool,
    },
}

fn init_logging(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref()).context("invalid settings")?;
    init_logging(&settings.log.filter);
    let running = xaynet_server::server::start(settings)
        .await
        .context("could not start the coordinator")?;
    println!("xaynet coordinator listening on http://{}", running.addr);
    shutdown_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn keygen(out: Option<PathBuf>) -> anyhow::Result<()> {
    use base64::Engine as _;
    let keys = xaynet_core::SigningKeyPair::generate(&mut xaynet_core::crypto::OsRng);
    let secret = hex::encode(&keys.secret.to_libsodium_bytes()[..]);
    match out {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).with_context(|| {
                format!("cannot create {} (it must not exist yet)", path.display())
            })?;
            std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("secret key written to {}", path.display());
        }
        None => {
            eprintln!(
                "warning: printing the secret key; use --out FILE to keep it off the terminal"
            );
            println!("secret_key {secret}");
        }
    }
    println!("public_key {}", hex::encode(keys.public.as_bytes()));
    println!(
        "public_key_base64 {}",
        base64::engine::general_purpose::STANDARD.encode(keys.public.as_bytes())
    );
    Ok(())
}

async fn model_get(url: String, out: Option<PathBuf>, v1: bool) -> anyhow::Result<()> {
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let path = if v1 { "model" } else { "model.bin" };
    let response = client
        .get(format!("{base}/{path}"))
        .send()
        .await
        .with_context(|| format!("cannot reach the coordinator at {base}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT || status == reqwest::StatusCode::NOT_FOUND {
        anyhow::bail!("the coordinator has no global model yet");
    }
    if !status.is_success() {
        anyhow::bail!("the coordinator answered {status}");
    }
    let headers = response.headers().clone();
    let body = response.bytes().await.context("download interrupted")?;
    let weights: Vec<f64> = if v1 {
        let model = xaynet_core::Model::from_bincode(&body).context("not a v1 model body")?;
        model.to_f64().context("a weight is out of the f64 range")?
    } else {
        if let Some(path) = out {
            std::fs::write(&path, &body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{} bytes written to {}", body.len(), path.display());
            return Ok(());
        }
        let kind = headers
            .get("x-xaynet-data-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("f32")
            .to_string();
        decode_raw(&body, &kind)?
    };
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_vec(&weights)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    if let Some(round) = headers
        .get("x-xaynet-round-id")
        .and_then(|v| v.to_str().ok())
    {
        eprintln!("global model of round {round}, {} weights", weights.len());
    }
    println!("{}", serde_json::to_string(&weights)?);
    Ok(())
}

/// Raw little-endian weights of a data type as f64 (exact for every type but i64 beyond 2^53).
fn decode_raw(body: &[u8], kind: &str) -> anyhow::Result<Vec<f64>> {
    let width = match kind {
        "f32" | "i32" => 4,
        "f64" | "i64" => 8,
        other => anyhow::bail!("unknown data type {other:?}"),
    };
    if !body.len().is_multiple_of(width) {
        anyhow::bail!(
            "body of {} bytes is not a whole number of {kind} values",
            body.len()
        );
    }
    Ok(body
        .chunks_exact(width)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(c);
            match kind {
                "f32" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                "i32" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                "f64" => f64::from_le_bytes(b),
                _ => i64::from_le_bytes(b) as f64,
            }
        })
        .collect())
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)),
        Command::Keygen { out } => keygen(out),
        Command::Demo(args) => {
            drop(runtime);
            demo::demo(args)
        }
        Command::Simulate(args) => {
            drop(runtime);
            simulate::simulate(args)
        }
        Command::Model {
            command: ModelCommand::Get { url, out, v1 },
        } => runtime.block_on(model_get(url, out, v1)),
    }
}
