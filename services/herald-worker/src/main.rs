use std::path::PathBuf;

use clap::Parser;
use herald_config::Settings;
use herald_worker::Worker;

/// Herald worker: consumes accepted notifications and delivers them through the providers.
#[derive(Parser)]
#[command(version)]
struct Arguments {
    /// TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, env = "HERALD_CONFIG_FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    herald_telemetry::init_logging();
    let arguments = Arguments::parse();
    let settings = Settings::load(arguments.config.as_deref())?;
    let worker = Worker::build(settings.clone()).await?;
    tracing::info!(
        topic = %settings.kafka.topic,
        group = %settings.worker.group_id,
        metrics = %format!("http://{}:{}/metrics", settings.server.host, worker.metrics_port()),
        "herald-worker started"
    );
    worker
        .run_until_stopped(herald_telemetry::shutdown_signal())
        .await
}
