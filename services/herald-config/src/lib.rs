//! Typed, layered configuration: built-in defaults → an optional TOML file → `HERALD_*` environment
//! variables. Validated once at start-up; an invalid setting stops the process with a message that
//! names it. Secrets are `SecretString`s: they never appear in `Debug` output or logs.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

mod kafka_security;
mod redis;
mod status_events;
mod validate;

pub use herald_channels::sendgrid::SendGridSettings;
pub use herald_channels::smtp::SmtpSettings;
pub use herald_channels::telegram::TelegramSettings;
pub use herald_channels::twilio::{
    twilio_status_callback_url, TwilioSettings, TWILIO_STATUS_CALLBACK_PATH,
};
pub use herald_channels::{
    CircuitBreakerConfig, LaneSettings, OutboundSettings, ProvidersSettings, RateLimitConfig,
};
pub use kafka_security::{
    KafkaOauthBearerSettings, KafkaSaslMechanism, KafkaSaslSettings, KafkaSecurityProtocol,
    KafkaSecuritySettings,
};
pub use redis::RedisSettings;
pub use status_events::StatusEventsSettings;
pub use validate::ConfigError;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
    pub retention: RetentionSettings,
    pub idempotency: IdempotencySettings,
    pub worker: WorkerSettings,
    pub groups: GroupsSettings,
    pub templates: TemplatesSettings,
    pub unsubscribe: UnsubscribeSettings,
    pub providers: ProvidersSettings,
    pub outbound: OutboundSettings,
    /// Delivery status events and webhook subscriptions; defaults when the section is absent.
    #[serde(default)]
    pub status_events: StatusEventsSettings,
    /// The tag-invalidated cache (docs/DESIGN.md, "The tag cache"); defaults when absent.
    #[serde(default)]
    pub cache: CacheSettings,
}

/// The tag-invalidated cache: entries in Redis and in process, each registered under tags that a
/// write invalidates on every replica (docs/DESIGN.md, "The tag cache").
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    /// How long an entry lives in Redis and in process at most; the bound on staleness only in
    /// the one case the protocol cannot close (a write made while Redis was unreachable by a
    /// replica that died before Redis came back).
    pub ttl_seconds: u64,
    /// What the in-process entries of one kind may weigh together (their values' JSON bytes).
    pub local_max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl_seconds: 300,
            local_max_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// The API's operations port: `/metrics`, `/healthz` and, with the `profiling` feature,
    /// `/debug/pprof/*`, apart from the public `port` (the worker's is `worker.metrics_port`).
    pub metrics_port: u16,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive; beyond it 408, and its bytes are given back.
    pub body_read_timeout_ms: u64,
    /// Reads (status, lists) holding a database connection at once; beyond it 503 at once, so
    /// reads never queue for the pool nor take the group commit's connections.
    pub max_concurrent_reads: usize,
    /// Of those, the most one tenant may hold; beyond it that tenant gets 429.
    pub max_concurrent_reads_per_tenant: usize,
    /// actix worker threads; 0 means one per core.
    pub workers: usize,
    /// Proxies (addresses or networks, e.g. the ingress's) whose `X-Forwarded-For` names the
    /// client for per-client bounds; empty: the peer is the client, the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Contains the password, hence secret.
    pub url: SecretString,
    /// Where the API listens for API key additions and revocations (LISTEN), when `url` goes
    /// through a pooler that cannot hold a LISTEN: PgBouncer in transaction mode hands the server
    /// connection to other clients after each statement, so announcements would never arrive and
    /// a revoked key would keep working until the next full reload. A direct URL to PostgreSQL; one
    /// connection per API process. Empty: a connection of the pool. Contains the password, hence
    /// secret.
    #[serde(default)]
    pub listen_url: Option<SecretString>,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub query_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: String,
    /// Where `normal` and `low` notifications go.
    pub topic: String,
    /// Where `high` notifications go (docs/DESIGN.md, "Priority lanes"); empty: `{topic}.high`.
    #[serde(default)]
    pub high_priority_topic: String,
    /// Partitions used by `create-topics`; producers and consumers read the real count from the
    /// broker (and notice more within `metadata_refresh_ms`).
    pub partitions: i32,
    /// Replicas of each topic `create-topics` makes; -1: the brokers' `default.replication.factor`.
    pub replication_factor: i32,
    /// `min.insync.replicas` of each topic `create-topics` makes; 0: the brokers' default.
    pub min_insync_replicas: i32,
    pub compression: String,
    pub linger_ms: u64,
    pub message_timeout_ms: u64,
    pub queue_max_messages: u64,
    /// Largest record (key + value) the API will produce.
    pub max_record_bytes: usize,
    /// How often every client refreshes the cluster's metadata: partitions added to a topic are
    /// produced to and consumed within this long, without a restart.
    pub metadata_refresh_ms: u64,
    /// The consumer group protocol of the worker's groups (docs/DESIGN.md, "Records and
    /// partitions").
    pub group_protocol: GroupProtocol,
    /// Encryption and authentication to the brokers; plaintext when the section is absent.
    #[serde(default)]
    pub security: KafkaSecuritySettings,
}

/// How a consumer group shares its partitions out (Kafka's `group.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupProtocol {
    /// The classic protocol (JoinGroup and SyncGroup rounds, the members' own assignor), here with
    /// the `cooperative-sticky` assignor: a rebalance moves only the partitions that change owner.
    /// The session timeout is the client's (`worker.session_timeout_ms`).
    Classic,
    /// The consumer protocol of KIP-848 (Kafka 4.0 and later): the broker assigns, incrementally;
    /// the session timeout is the broker's `group.consumer.session.timeout.ms`.
    Consumer,
}

impl GroupProtocol {
    /// The value as configuration (and librdkafka's `group.protocol`) spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl KafkaSettings {
    /// The topic of `high` notifications: `high_priority_topic`, or `{topic}.high` when empty.
    pub fn high_priority_topic(&self) -> String {
        match self.high_priority_topic.trim() {
            "" => format!("{}.high", self.topic),
            topic => topic.to_owned(),
        }
    }

    /// The producer's `message.max.bytes`: the record limit plus room for the batch framing.
    pub fn producer_message_max_bytes(&self) -> usize {
        self.max_record_bytes + 4096
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// A commit batch is flushed when it holds this many notifications…
    pub max_batch_rows: usize,
    /// …or this many bytes of content…
    pub max_batch_bytes: usize,
    /// …or when its first notification has waited this long.
    pub linger_ms: u64,
    /// Commit batches written to PostgreSQL at the same time.
    pub max_concurrent_writes: usize,
    /// Submissions waiting for a commit batch; beyond this the API answers 503.
    pub queue_capacity: usize,
    /// Request bytes held by requests in progress; beyond this the API answers 503.
    pub max_bytes_in_flight: usize,
    /// Most notifications in one `POST /v1/notifications/batch`.
    pub max_batch_items: usize,
    /// Most `user_ids` in one notification.
    pub max_recipients: usize,
    /// Notifications per second one tenant may submit, shared by every API replica through Redis
    /// (429 with `Retry-After` beyond; a burst of a second's worth, or of one full batch); 0 for no
    /// limit. An operator overrides it per tenant with `herald-api set-ingest-limit`.
    pub tenant_notifications_per_second: u32,
    /// Notifications one tenant may submit per UTC day, counted across every API replica in Redis
    /// (429 `quota_exceeded` with `Retry-After` until the next UTC midnight beyond); 0 for no quota.
    /// An operator overrides it per tenant with `herald-api set-ingest-limit`.
    pub tenant_notifications_per_day: u64,
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

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    pub days: u32,
    pub premake_days: u32,
    pub maintenance_interval_ms: u64,
}

impl RetentionSettings {
    /// How far ahead a notification may be scheduled: it must be final before its day is dropped.
    pub fn max_schedule_ahead_days(&self) -> i64 {
        i64::from(self.days) - 2
    }

    /// Kafka's `retention.ms`: a day less than PostgreSQL keeps notifications, so a replayed record
    /// always finds its notification.
    pub fn kafka_retention_ms(&self) -> i64 {
        (i64::from(self.days) - 1) * 24 * 3600 * 1000
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    pub window_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub group_id: String,
    /// Static group membership (Kafka `group.instance.id`), e.g. the pod name of a StatefulSet:
    /// a restarted worker takes its partitions back at once instead of after a session timeout.
    #[serde(default)]
    pub instance_id: Option<String>,
    pub batch_size: usize,
    pub batch_linger_ms: u64,
    pub session_timeout_ms: u64,
    pub partition_buffer_kbytes: usize,
    pub lease_ms: u64,
    pub max_attempts: i32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub sweep_interval_ms: u64,
    pub drain_timeout_ms: u64,
    pub metrics_port: u16,
    pub content_cache_bytes: u64,
    /// The part of each lane's `max_held` one tenant may hold (0 < share ≤ 1): the rest stays
    /// free for the other tenants (docs/DESIGN.md, "Fairness between tenants").
    pub tenant_held_share: f64,
}

/// Groups of recipients and their fan-out in the worker (docs/DESIGN.md, "Groups: fan-out in the
/// worker").
#[derive(Debug, Clone, Deserialize)]
pub struct GroupsSettings {
    /// Groups one notification may name.
    pub max_per_notification: usize,
    /// Groups one tenant may have (deleted ones do not count).
    pub max_per_tenant: u64,
    /// Members one group may have.
    pub max_members: u64,
    /// Members added or removed by one request, and planned by one page of an expansion.
    pub page_size: usize,
    /// Expansions one worker runs at once (at most one per tenant across every worker).
    pub max_concurrent_expansions: usize,
    /// Records one expansion produces per second at most: a group of 1,000,000 becomes a steady
    /// stream the lanes' admission keeps up with, not a million records ahead of other tenants'.
    pub records_per_second: u32,
    /// How often an idle worker looks for expansions to take.
    pub poll_interval_ms: u64,
}

/// Templates (docs/DESIGN.md, "Templates").
#[derive(Debug, Clone, Deserialize)]
pub struct TemplatesSettings {
    /// Templates one tenant may have (deleted ones do not count).
    pub max_per_tenant: u64,
    /// Versions one template may have: each `PUT` writes one, and versions are kept (accepted
    /// notifications render theirs).
    pub max_versions: i32,
    /// Compiled template versions a worker (or an API replica, for previews) keeps in memory.
    pub compiled_cache_entries: u64,
}

/// One-click unsubscribe links in emails (docs/DESIGN.md, "Unsubscribe links"): off while
/// `base_url` is empty. The API and every worker must share the keys.
#[derive(Debug, Clone, Deserialize)]
pub struct UnsubscribeSettings {
    /// The API's public address as recipients reach it (`https://herald.example.com`); the
    /// links are `{base_url}/v1/unsubscribe/{token}`.
    pub base_url: String,
    /// Signs the links' tokens: at least 32 bytes (`openssl rand -base64 48`).
    pub signing_key: SecretString,
    /// Keys retired by a rotation, comma-separated: links they signed, in emails already sent,
    /// still work.
    pub previous_signing_keys: SecretString,
}

impl UnsubscribeSettings {
    /// The retired keys, one per comma-separated entry.
    pub fn previous_keys(&self) -> impl Iterator<Item = &str> {
        use secrecy::ExposeSecret;
        self.previous_signing_keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
    }

    /// The deployment's links, when they are on.
    pub fn links(&self) -> Option<herald_domain::unsubscribe::UnsubscribeLinks> {
        use herald_domain::unsubscribe::{UnsubscribeLinks, UnsubscribeSigner};
        use secrecy::ExposeSecret;
        if self.base_url.is_empty() {
            return None;
        }
        let previous: Vec<&[u8]> = self.previous_keys().map(str::as_bytes).collect();
        let signer = UnsubscribeSigner::new(self.signing_key.expose_secret().as_bytes(), &previous);
        Some(UnsubscribeLinks::new(&self.base_url, signer))
    }
}

impl WorkerSettings {
    /// How often a worker session renews its heartbeat.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        (self.lease_ms / 10).max(50)
    }
}

/// Provider settings also answer to the flat names operators know from the providers' docs.
const FLAT_ENVIRONMENT_ALIASES: [(&str, &str); 13] = [
    ("HERALD_SENDGRID_BASE_URL", "providers.sendgrid.base_url"),
    ("HERALD_SENDGRID_API_KEY", "providers.sendgrid.api_key"),
    ("HERALD_SENDGRID_FROM", "providers.sendgrid.from"),
    (
        "HERALD_SENDGRID_EVENT_WEBHOOK_PUBLIC_KEY",
        "providers.sendgrid.event_webhook_public_key",
    ),
    ("HERALD_TWILIO_BASE_URL", "providers.twilio.base_url"),
    ("HERALD_TWILIO_ACCOUNT_SID", "providers.twilio.account_sid"),
    ("HERALD_TWILIO_AUTH_TOKEN", "providers.twilio.auth_token"),
    ("HERALD_TWILIO_FROM", "providers.twilio.from"),
    (
        "HERALD_TWILIO_STATUS_CALLBACK_BASE_URL",
        "providers.twilio.status_callback_base_url",
    ),
    ("HERALD_TELEGRAM_BASE_URL", "providers.telegram.base_url"),
    ("HERALD_TELEGRAM_BOT_TOKEN", "providers.telegram.bot_token"),
    ("HERALD_SMTP_URL", "providers.smtp.url"),
    ("HERALD_SMTP_FROM", "providers.smtp.from"),
];

const DEFAULTS: &str = include_str!("../../../config/herald.toml");

impl Settings {
    /// Loads the defaults, then `config_file` if given, then the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load_with_environment(config_file, std::env::vars())
    }

    /// [`Settings::load`] with the environment given: every variable, Herald's or not.
    ///
    /// A setting nobody reads is an error, never ignored: a key of the file, or a `HERALD_…__…`
    /// variable, that names no setting (a typo, or a setting that moved, such as
    /// `HERALD_SENDGRID__REQUESTS_PER_SECOND` after `[providers.sendgrid]`) stops the start-up
    /// with its name. Variables with a single `_` after the prefix are not settings (they belong
    /// to the scripts: `HERALD_LOG_FORMAT`, `HERALD_SIM_…`), except the flat provider aliases,
    /// whose families (`HERALD_SENDGRID_…` and the like) accept only the aliases themselves.
    pub fn load_with_environment(
        config_file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let herald_variables: HashMap<String, String> = environment
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENVIRONMENT_PREFIX))
            .collect();
        refuse_unknown_flat_provider_variables(&herald_variables)?;
        let nested_variables: HashMap<String, String> = herald_variables
            .iter()
            .filter(|(name, _)| name[ENVIRONMENT_PREFIX.len()..].contains(ENVIRONMENT_SEPARATOR))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();

        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = config_file {
            builder = builder.add_source(File::from(path).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("HERALD")
                .prefix_separator("_")
                .separator(ENVIRONMENT_SEPARATOR)
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .source(Some(nested_variables.clone())),
        );
        for (variable, key) in FLAT_ENVIRONMENT_ALIASES {
            builder = builder
                .set_override_option(key, herald_variables.get(variable).cloned())
                .map_err(ConfigError::Load)?;
        }
        let layered = builder.build().map_err(ConfigError::Load)?;
        let mut unknown_keys = Vec::new();
        let settings: Settings = serde_ignored::deserialize(layered, |path| {
            unknown_keys.push(path.to_string());
        })
        .map_err(ConfigError::Load)?;
        if let Some(unknown_key) = unknown_keys.first() {
            return Err(ConfigError::Unknown {
                setting: unknown_key.clone(),
                source_hint: variable_naming(unknown_key, &nested_variables),
            });
        }
        settings.validate()?;
        Ok(settings)
    }
}

const ENVIRONMENT_PREFIX: &str = "HERALD_";
const ENVIRONMENT_SEPARATOR: &str = "__";

/// `HERALD_SENDGRID_FROM` is an alias; `HERALD_SENDGRID_REQUESTS_PER_SECOND` is nothing, and
/// would otherwise be ignored without a word.
fn refuse_unknown_flat_provider_variables(
    herald_variables: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    let alias_families: Vec<String> = FLAT_ENVIRONMENT_ALIASES
        .iter()
        .map(|(variable, _)| {
            let family_end = variable[ENVIRONMENT_PREFIX.len()..]
                .find('_')
                .map_or(variable.len(), |index| ENVIRONMENT_PREFIX.len() + index + 1);
            variable[..family_end].to_owned()
        })
        .collect();
    let mut unknown: Vec<&String> = herald_variables
        .keys()
        .filter(|name| !name[ENVIRONMENT_PREFIX.len()..].contains(ENVIRONMENT_SEPARATOR))
        .filter(|name| {
            alias_families
                .iter()
                .any(|family| name.starts_with(family.as_str()))
        })
        .filter(|name| {
            !FLAT_ENVIRONMENT_ALIASES
                .iter()
                .any(|(alias, _)| alias == name)
        })
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(variable) => Err(ConfigError::Unknown {
            setting: (*variable).clone(),
            source_hint: format!(
                "not one of the provider aliases ({}); nested settings are spelled HERALD_PROVIDERS__<PROVIDER>__<KEY>",
                FLAT_ENVIRONMENT_ALIASES
                    .iter()
                    .map(|(alias, _)| *alias)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The variable that set `unknown_key` (or a key inside it), to name it in the error.
fn variable_naming(unknown_key: &str, nested_variables: &HashMap<String, String>) -> String {
    let mut naming: Vec<&String> = nested_variables
        .keys()
        .filter(|name| {
            let key = name[ENVIRONMENT_PREFIX.len()..]
                .to_lowercase()
                .replace(ENVIRONMENT_SEPARATOR, ".");
            key == unknown_key || key.starts_with(&format!("{unknown_key}."))
        })
        .collect();
    naming.sort();
    match naming.first() {
        Some(variable) => format!("set by the environment variable {variable}"),
        None => "set in the configuration file".to_owned(),
    }
}
