//! `xaynet`: the one binary users run.
//!
//! `xaynet serve` runs a coordinator. The participant-side commands (`demo`, `simulate`,
//! `keygen`, `model get`) come with the participant SDK.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use xaynet_server::settings::Settings;

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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)),
    }
}
