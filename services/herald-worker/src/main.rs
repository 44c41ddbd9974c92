use std::path::PathBuf;

use clap::{Parser, Subcommand};
use herald_config::Settings;
use herald_worker::{cli, Worker};

/// Herald worker: consumes accepted notifications and delivers them through the providers.
#[derive(Parser)]
#[command(version)]
struct Arguments {
    /// TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, env = "HERALD_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume and deliver (the default).
    Run,
    /// List records that could not be processed (JSON lines).
    Parked {
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Produce parked records back to their topic, oldest first.
    ReplayParked {
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

/// mimalloc: the allocator is on every request's path, and glibc's showed up in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let arguments = Arguments::parse();
    let telemetry = herald_telemetry::init("herald-worker");
    let result = run(arguments).await;
    // The spans still buffered are exported before the process ends, whatever the outcome.
    telemetry.shutdown().await;
    if let Err(error) = result {
        herald_telemetry::exit_with_error(error.as_ref());
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let settings = Settings::load(arguments.config.as_deref())?;
    match arguments.command.unwrap_or(Command::Run) {
        Command::Run => {
            let worker = Worker::build(settings.clone()).await?;
            tracing::info!(
                topic = %settings.kafka.topic,
                group = %settings.worker.group_id,
                metrics = %format!("http://{}:{}/metrics", settings.server.host, worker.metrics_port()),
                "herald-worker started"
            );
            worker
                .run_until_stopped(herald_telemetry::shutdown_signal())
                .await?;
        }
        Command::Parked { limit } => {
            for record in cli::parked(&settings, limit).await? {
                println!("{}", serde_json::to_string(&record)?);
            }
        }
        Command::ReplayParked { limit } => {
            let replayed = cli::replay_parked(&settings, limit).await?;
            println!("{replayed} parked records produced again");
        }
    }
    Ok(())
}
