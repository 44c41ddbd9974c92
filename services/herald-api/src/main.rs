use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};
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
    /// Set a tenant's ingest limits, notifications per second and per UTC day (0: none; either or
    /// both, the other one kept), or with `--default` go back to both settings
    /// (`ingest.tenant_notifications_per_second`, `ingest.tenant_notifications_per_day`). Every API
    /// replica applies them within 2 s.
    #[command(group(
        ArgGroup::new("limits")
            .required(true)
            .multiple(true)
            .args(["notifications_per_second", "notifications_per_day", "default"])
    ))]
    SetIngestLimit {
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        /// Notifications per second, shared by every replica (0: no limit).
        #[arg(long, conflicts_with = "default")]
        notifications_per_second: Option<u32>,
        /// Notifications per UTC day, shared by every replica (0: no quota).
        #[arg(long, conflicts_with = "default")]
        notifications_per_day: Option<u64>,
        /// Remove both overrides: the settings apply.
        #[arg(long)]
        default: bool,
    },
    /// Whether a tenant's `high` notifications go through its recipients' quiet hours (`true`, the
    /// default) or wait until they end like the others (`false`).
    SetQuietHoursOverride {
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        #[arg(long, action = clap::ArgAction::Set)]
        high_priority_overrides: bool,
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
                metrics = %format!("http://{}:{}/metrics", settings.server.host, application.metrics_port()),
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
            notifications_per_day,
            default,
        } => {
            let overrides = (!default).then_some(cli::IngestLimitOverrides {
                notifications_per_second,
                notifications_per_day,
            });
            cli::set_ingest_limits(&settings, &tenant, overrides).await?;
            println!("{tenant}: {}", describe_ingest_limits(overrides, &settings));
        }
        Command::SetQuietHoursOverride {
            tenant,
            high_priority_overrides,
        } => {
            cli::set_quiet_hours_override(&settings, &tenant, high_priority_overrides).await?;
            println!("{tenant}: high priority overrides quiet hours: {high_priority_overrides}");
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

/// What `set-ingest-limit` set, in the operator's words.
fn describe_ingest_limits(
    overrides: Option<cli::IngestLimitOverrides>,
    settings: &Settings,
) -> String {
    let Some(overrides) = overrides else {
        return format!(
            "the defaults ({} notifications per second, {} per day; 0 is none)",
            settings.ingest.tenant_notifications_per_second,
            settings.ingest.tenant_notifications_per_day
        );
    };
    let per_second = overrides.notifications_per_second.map(|rate| match rate {
        0 => "no ingest limit".to_owned(),
        rate => format!("{rate} notifications per second"),
    });
    let per_day = overrides.notifications_per_day.map(|quota| match quota {
        0 => "no daily quota".to_owned(),
        quota => format!("{quota} notifications per day"),
    });
    [per_second, per_day]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}
