use std::path::PathBuf;

use clap::{Parser, Subcommand};
use herald_api::{cli, Application};
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
    /// Apply pending database migrations and make the coming days' partitions.
    Migrate,
    /// Create the Kafka topics with the configured partition count and retention.
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
    /// Revoke an API key (read from `HERALD_REVOKE_KEY`, never from the command line).
    RevokeKey {
        #[arg(long, env = "HERALD_REVOKE_KEY", hide_env_values = true)]
        key: String,
    },
    /// Set a tenant's ingest limit in notifications per second (0: none), or with `--default` go
    /// back to `ingest.tenant_notifications_per_second`. Every API replica applies it within 2 s.
    SetIngestLimit {
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        #[arg(long, required_unless_present = "default", conflicts_with = "default")]
        notifications_per_second: Option<u32>,
        #[arg(long)]
        default: bool,
    },
    /// List records the broker refused for good (JSON lines).
    Parked {
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Publish the notifications of parked records again (all, or one notification's).
    ReplayParked {
        #[arg(long)]
        notification_id: Option<uuid::Uuid>,
    },
}

/// mimalloc: the allocator is on every request's path, and glibc's showed up in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let arguments = Arguments::parse();
    let telemetry = herald_telemetry::init("herald-api");
    let result = run(arguments).await;
    // The spans still buffered are exported before the process ends, whatever the outcome.
    telemetry.shutdown().await;
    if let Err(error) = result {
        herald_telemetry::exit_with_error(error.as_ref());
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
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
                "topics {} and {} ready ({} partitions each)",
                settings.kafka.topic,
                settings.kafka.high_priority_topic(),
                settings.kafka.partitions
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
        Command::SetIngestLimit {
            tenant,
            notifications_per_second,
            default,
        } => {
            let limit = if default {
                None
            } else {
                notifications_per_second
            };
            cli::set_ingest_limit(&settings, &tenant, limit).await?;
            match limit {
                Some(0) => println!("{tenant}: no ingest limit"),
                Some(rate) => println!("{tenant}: {rate} notifications per second"),
                None => println!(
                    "{tenant}: the default ({} notifications per second; 0 is none)",
                    settings.ingest.tenant_notifications_per_second
                ),
            }
        }
        Command::RevokeKey { key } => {
            let revoked = cli::revoke_key(&settings, &key).await?;
            println!(
                "{}",
                if revoked {
                    "revoked"
                } else {
                    "no active key matched"
                }
            );
        }
        Command::Parked { limit } => {
            for record in cli::parked(&settings, limit).await? {
                println!("{}", serde_json::to_string(&record)?);
            }
        }
        Command::ReplayParked { notification_id } => {
            let replayed = cli::replay_parked(&settings, notification_id).await?;
            println!("{replayed} notifications queued for publishing again");
        }
    }
    Ok(())
}
