//! Typed, layered configuration: built-in defaults → an optional TOML file → `HERALD_*` environment
//! variables. Validated once at start-up; an invalid setting stops the process with a message that
//! names it. Secrets are `SecretString`s: they never appear in `Debug` output or logs.

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

mod validate;

pub use validate::ConfigError;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    /// actix worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Contains the password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    /// Partitions used by `create-topics`; producers read the real count from the broker.
    pub partitions: i32,
    pub compression: String,
    pub linger_ms: u64,
    pub message_timeout_ms: u64,
    pub queue_max_messages: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// A commit batch is flushed when it holds this many notifications…
    pub max_batch_rows: usize,
    /// …or when its first notification has waited this long.
    pub linger_ms: u64,
    /// Commit batches written to PostgreSQL at the same time.
    pub max_concurrent_writes: usize,
    /// Submissions waiting for a commit batch; beyond this the API answers 503.
    pub queue_capacity: usize,
    /// Most notifications in one `POST /v1/notifications/batch`.
    pub max_batch_items: usize,
    /// Most `user_ids` in one notification.
    pub max_recipients: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub relay_interval_ms: u64,
    /// Outbox rows younger than this belong to the fast path; must exceed `kafka.message_timeout_ms`.
    pub grace_ms: u64,
    pub lease_ms: u64,
    pub relay_batch_limit: u64,
    /// Committed but unpublished notifications above which the API sheds load with 503.
    pub max_unpublished: u64,
}

const DEFAULTS: &str = include_str!("../../../config/herald.toml");

impl Settings {
    /// Loads the defaults, then `config_file` if given, then the environment.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = config_file {
            builder = builder.add_source(File::from(path).required(true));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("HERALD")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(|layered| layered.try_deserialize())
            .map_err(ConfigError::Load)?;
        settings.validate()?;
        Ok(settings)
    }
}
