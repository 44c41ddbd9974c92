//! Test support for Herald's integration tests (see scripts/test.sh for the environment): fresh
//! databases and topics, and servers of a test's own (Apache Kafka, PostgreSQL, Redis) that it may
//! kill and restart.

mod oidc;
pub mod otlp;
pub mod provider_signatures;
mod proxy;
mod servers;
mod tls;

use std::net::TcpListener;
use std::time::Duration;

use herald_config::Settings;
use herald_store::Database;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub use oidc::TokenEndpoint;
pub use proxy::TcpProxy;
pub use servers::{
    KafkaCluster, PostgresServer, RedisClientCertificates, RedisServer, SecureKafka,
    SECURE_KAFKA_USER,
};
pub use tls::TestCertificates;

/// A variable `scripts/test.sh` sets.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`"))
}

/// Settings for a fresh, migrated database and fresh topics (4 partitions) on `brokers`, with
/// short timeouts so failure paths run in seconds, and a consumer group of their own.
pub async fn fresh_settings(brokers: &str) -> Settings {
    fresh_settings_on(
        &env("HERALD_TEST_DATABASE_URL"),
        &env("HERALD_TEST_REDIS_URL"),
        brokers,
    )
    .await
}

/// Like [`fresh_settings`], on the PostgreSQL server of `admin_url` and the Redis of `redis_url`.
pub async fn fresh_settings_on(admin_url: &str, redis_url: &str, brokers: &str) -> Settings {
    let mut settings = Settings::load(None).expect("default settings");
    let database_name = format!("herald_test_{}", Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connecting to the test PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {database_name}"))
        .await
        .expect("creating the test database");
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').unwrap().0;
    settings.database.url = SecretString::from(format!("{base}/{database_name}"));
    settings.database.max_connections = 8;
    settings.server.max_concurrent_reads = 4;
    settings.redis.url = SecretString::from(redis_url.to_owned());
    settings.kafka.brokers = brokers.to_owned();
    settings.kafka.topic = format!("notifications-{}", Uuid::new_v4().simple());
    settings.kafka.partitions = 4;
    settings.kafka.message_timeout_ms = 1500;
    settings.outbox.grace_ms = 2000;
    settings.outbox.relay_interval_ms = 200;
    settings.server.port = 0;
    settings.server.metrics_port = 0;
    settings.server.workers = 2;
    settings.worker.group_id = format!("workers-{}", Uuid::new_v4().simple());
    settings.status_events.topic = format!("notification-events-{}", Uuid::new_v4().simple());
    settings.status_events.subscriptions_group_id =
        format!("webhook-subscriptions-{}", Uuid::new_v4().simple());
    settings.status_events.retry_base_ms = 200;
    settings.status_events.retry_max_ms = 1000;
    settings.status_events.timeout_ms = 1000;
    settings.worker.metrics_port = 0;
    settings.worker.batch_linger_ms = 10;
    settings.worker.lease_ms = 3000;
    settings.worker.retry_base_ms = 200;
    settings.worker.retry_max_ms = 1000;
    settings.worker.sweep_interval_ms = 200;
    settings.worker.drain_timeout_ms = 5000;
    settings.providers.set_timeouts_ms(1000);
    // Recipients' webhooks point at the simulator on 127.0.0.1.
    settings.outbound.allow_private_networks = true;

    herald_api::cli::migrate(&settings)
        .await
        .expect("migrating the test database");
    herald_api::cli::create_topics(&settings)
        .await
        .expect("creating the test topics");
    settings
}

/// The environment that makes a `herald-api` or `herald-worker` child process use `settings`
/// (the parts tests change).
pub fn process_environment(settings: &Settings) -> Vec<(String, String)> {
    let fixed = [
        (
            "HERALD_DATABASE__URL",
            settings.database.url.expose_secret().to_owned(),
        ),
        (
            "HERALD_REDIS__URL",
            settings.redis.url.expose_secret().to_owned(),
        ),
        ("HERALD_KAFKA__BROKERS", settings.kafka.brokers.clone()),
        // A child API's operations port: any free one unless a test names it (several APIs run
        // side by side, and the default would be taken by the first).
        (
            "HERALD_SERVER__METRICS_PORT",
            settings.server.metrics_port.to_string(),
        ),
        ("HERALD_KAFKA__TOPIC", settings.kafka.topic.clone()),
        // Whatever the test set, or `{topic}.high` (the children derive the same).
        (
            "HERALD_KAFKA__HIGH_PRIORITY_TOPIC",
            settings.kafka.high_priority_topic(),
        ),
        (
            "HERALD_KAFKA__MESSAGE_TIMEOUT_MS",
            settings.kafka.message_timeout_ms.to_string(),
        ),
        (
            "HERALD_KAFKA__MAX_RECORD_BYTES",
            settings.kafka.max_record_bytes.to_string(),
        ),
        (
            "HERALD_KAFKA__METADATA_REFRESH_MS",
            settings.kafka.metadata_refresh_ms.to_string(),
        ),
        (
            "HERALD_KAFKA__GROUP_PROTOCOL",
            settings.kafka.group_protocol.as_str().to_owned(),
        ),
        (
            "HERALD_OUTBOX__GRACE_MS",
            settings.outbox.grace_ms.to_string(),
        ),
        (
            "HERALD_OUTBOX__RELAY_INTERVAL_MS",
            settings.outbox.relay_interval_ms.to_string(),
        ),
        ("HERALD_WORKER__GROUP_ID", settings.worker.group_id.clone()),
        (
            "HERALD_STATUS_EVENTS__TOPIC",
            settings.status_events.topic.clone(),
        ),
        (
            "HERALD_STATUS_EVENTS__SUBSCRIPTIONS_GROUP_ID",
            settings.status_events.subscriptions_group_id.clone(),
        ),
        (
            "HERALD_STATUS_EVENTS__RELAY_LEASE_MS",
            settings.status_events.relay_lease_ms.to_string(),
        ),
        (
            "HERALD_WORKER__LEASE_MS",
            settings.worker.lease_ms.to_string(),
        ),
        (
            "HERALD_WORKER__SWEEP_INTERVAL_MS",
            settings.worker.sweep_interval_ms.to_string(),
        ),
        (
            "HERALD_WORKER__RETRY_BASE_MS",
            settings.worker.retry_base_ms.to_string(),
        ),
        (
            "HERALD_WORKER__RETRY_MAX_MS",
            settings.worker.retry_max_ms.to_string(),
        ),
        (
            "HERALD_WORKER__MAX_ATTEMPTS",
            settings.worker.max_attempts.to_string(),
        ),
        (
            "HERALD_WORKER__BATCH_LINGER_MS",
            settings.worker.batch_linger_ms.to_string(),
        ),
        (
            "HERALD_WORKER__DRAIN_TIMEOUT_MS",
            settings.worker.drain_timeout_ms.to_string(),
        ),
        (
            "HERALD_SMTP_URL",
            settings.providers.smtp.url.expose_secret().to_owned(),
        ),
        (
            "HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS",
            settings.outbound.allow_private_networks.to_string(),
        ),
        (
            "HERALD_PROVIDERS__SENDGRID__REQUESTS_PER_SECOND",
            settings.providers.sendgrid.requests_per_second.to_string(),
        ),
        (
            "HERALD_PROVIDERS__TWILIO__REQUESTS_PER_SECOND",
            settings.providers.twilio.requests_per_second.to_string(),
        ),
        (
            "HERALD_PROVIDERS__TWILIO__MAX_IN_FLIGHT",
            settings.providers.twilio.max_in_flight.to_string(),
        ),
        (
            "HERALD_PROVIDERS__TWILIO__MAX_HELD",
            settings.providers.twilio.max_held.to_string(),
        ),
        (
            "HERALD_PROVIDERS__SENDGRID__MAX_IN_FLIGHT",
            settings.providers.sendgrid.max_in_flight.to_string(),
        ),
        (
            "HERALD_PROVIDERS__SENDGRID__MAX_HELD",
            settings.providers.sendgrid.max_held.to_string(),
        ),
    ];
    let mut environment: Vec<(String, String)> = fixed
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    // Every provider's timeout and base URL, whichever providers are registered.
    for (provider, lane) in settings.providers.lanes() {
        environment.push((
            format!(
                "HERALD_PROVIDERS__{}__TIMEOUT_MS",
                provider.as_str().to_uppercase()
            ),
            lane.timeout_ms.to_string(),
        ));
    }
    environment.push((
        "HERALD_PROVIDERS__SMTP__TIMEOUT_MS".to_owned(),
        settings.providers.smtp.timeout_ms.to_string(),
    ));
    for (setting, base_url) in settings.providers.base_urls() {
        environment.push((
            format!("HERALD_{}", setting.replace('.', "__").to_uppercase()),
            base_url.to_owned(),
        ));
    }
    // Encryption and logins (kafka.security, redis's TLS files), as the settings have them.
    let security = &settings.kafka.security;
    let sasl = &security.sasl;
    let oauthbearer = &sasl.oauthbearer;
    let secured = [
        (
            "HERALD_KAFKA__SECURITY__PROTOCOL",
            security.protocol.as_librdkafka().to_owned(),
        ),
        ("HERALD_KAFKA__SECURITY__CA_FILE", security.ca_file.clone()),
        (
            "HERALD_KAFKA__SECURITY__CERTIFICATE_FILE",
            security.certificate_file.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__KEY_FILE",
            security.key_file.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__MECHANISM",
            sasl.mechanism.as_librdkafka().unwrap_or("none").to_owned(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__USERNAME",
            sasl.username.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__PASSWORD",
            sasl.password.expose_secret().to_owned(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__PASSWORD_FILE",
            sasl.password_file.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__TOKEN_ENDPOINT_URL",
            oauthbearer.token_endpoint_url.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_ID",
            oauthbearer.client_id.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_SECRET",
            oauthbearer.client_secret.expose_secret().to_owned(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_SECRET_FILE",
            oauthbearer.client_secret_file.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__SCOPE",
            oauthbearer.scope.clone(),
        ),
        (
            "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__EXTENSIONS",
            oauthbearer.extensions.clone(),
        ),
        ("HERALD_REDIS__CA_FILE", settings.redis.ca_file.clone()),
        (
            "HERALD_REDIS__CERTIFICATE_FILE",
            settings.redis.certificate_file.clone(),
        ),
        ("HERALD_REDIS__KEY_FILE", settings.redis.key_file.clone()),
    ];
    environment.extend(
        secured
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    if let Some(instance_id) = &settings.worker.instance_id {
        environment.push(("HERALD_WORKER__INSTANCE_ID".to_owned(), instance_id.clone()));
    }
    environment
}

pub async fn connect(settings: &Settings) -> Database {
    Database::connect(&settings.database)
        .await
        .expect("connecting to the test database")
}

/// A table locked by a session of the test's own, in an open transaction, until [`release`]: what a
/// long migration or a stuck transaction does to the service.
///
/// [`release`]: TableLock::release
pub struct TableLock {
    transaction: sea_orm::DatabaseTransaction,
    _session: Database,
}

impl TableLock {
    /// Locks `table` in `mode` (`EXCLUSIVE`, `ACCESS EXCLUSIVE`, ...). The locking session waits
    /// without a statement timeout: it may queue behind the service's own start-up maintenance
    /// and must not run into a short timeout the test sets for the service.
    pub async fn take(settings: &Settings, table: &str, mode: &str) -> TableLock {
        let session = connect(settings).await;
        let transaction = sea_orm::TransactionTrait::begin(session.connection())
            .await
            .expect("beginning the locking transaction");
        transaction
            .execute_unprepared(&format!(
                "SET LOCAL statement_timeout = 0; LOCK TABLE {table} IN {mode} MODE"
            ))
            .await
            .expect("locking the table");
        TableLock {
            transaction,
            _session: session,
        }
    }

    /// Ends the transaction: the table is free again.
    pub async fn release(self) {
        self.transaction
            .rollback()
            .await
            .expect("ending the locking transaction");
    }
}

/// `SELECT count(*) ...` (or any single bigint) as a number.
pub async fn count(database: &Database, sql: &str) -> i64 {
    let row = database
        .connection()
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Runs SQL written by a test.
pub async fn execute(database: &Database, sql: &str) {
    database
        .connection()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to a minute for a server to listen on `port`: a Kafka broker's JVM starting on a
/// loaded 2-core machine took more than the 20 s this waited before.
pub async fn wait_for_port(port: u16) {
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The sum of a metric's samples in a Prometheus text exposition (all label sets).
pub fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many records `topic` holds (the sum of its partitions' watermark spans).
pub async fn topic_record_count(brokers: &str, topic: &str) -> i64 {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&topic), timeout).unwrap();
        metadata.topics()[0]
            .partitions()
            .iter()
            .map(|partition| {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition.id(), timeout)
                    .unwrap();
                high - low
            })
            .sum()
    })
    .await
    .unwrap()
}

pub struct RawRecord {
    pub key: Vec<u8>,
    pub partition: i32,
    pub payload: Vec<u8>,
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed.
pub async fn consume_raw(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<RawRecord> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while records.len() < expected {
        let Ok(received) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            break;
        };
        let message = received.expect("consuming");
        records.push(RawRecord {
            key: message.key().unwrap_or_default().to_vec(),
            partition: message.partition(),
            payload: message.payload().unwrap_or_default().to_vec(),
        });
    }
    records
}
