use std::path::PathBuf;

use clap::{Parser, Subcommand};
use herald_api::{cli, telemetry, Application};
use herald_config::Settings;

/// Herald notification API.
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
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Create the Kafka topic(s) with the configured partition count.
    CreateTopics,
    /// Create a tenant and print its first API key.
    CreateTenant {
        #[arg(long)]
        name: String,
    },
    /// Ensure a tenant exists and accepts the key from `HERALD_API_KEY` (or a new one); print it.
    EnsureTenant {
        #[arg(long)]
        name: String,
        #[arg(long, env = "HERALD_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let arguments = Arguments::parse();
    let settings = Settings::load(arguments.config.as_deref())?;
    match arguments.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let application = Application::build(settings.clone()).await?;
            tracing::info!(
                address = %format!("http://{}:{}", settings.server.host, application.port()),
                "herald-api listening"
            );
            application
                .run_until_stopped(herald_telemetry::shutdown_signal())
                .await?;
        }
        Command::Migrate => {
            cli::migrate(&settings).await?;
            println!("migrations applied");
        }
        Command::CreateTopics => {
            cli::create_topics(&settings).await?;
            println!(
                "topic {} ready ({} partitions)",
                settings.kafka.topic, settings.kafka.partitions
            );
        }
        Command::CreateTenant { name } => {
            let key = cli::create_tenant(&settings, &name).await?;
            println!("{key}");
        }
        Command::EnsureTenant { name, api_key } => {
            let key = cli::ensure_tenant_with_key(&settings, &name, api_key).await?;
            println!("{key}");
        }
    }
    Ok(())
}
