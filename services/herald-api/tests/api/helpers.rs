//! `spawn_app()` and friends: a fresh database, topic and tenant per test, the application bound
//! to port 0, and Kafka helpers to read what it produced.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use herald_api::Application;
use herald_config::Settings;
use herald_domain::NotificationEnvelope;
use herald_migrations::{Migrator, MigratorTrait};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::ClientConfig;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`"))
}

pub struct TestApp {
    pub address: String,
    pub api_key: String,
    pub tenant_id: Uuid,
    pub database: DatabaseConnection,
    pub settings: Settings,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a fresh database and topic; the database exists and is migrated, the topic
/// exists with 4 partitions.
pub async fn fresh_settings(brokers: &str) -> Settings {
    let mut settings = Settings::load(None).expect("default settings");
    let admin_url = env("HERALD_TEST_DATABASE_URL");
    let database_name = format!("herald_test_{}", Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url)
        .await
        .expect("connecting to the test PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {database_name}"))
        .await
        .expect("creating the test database");
    let base = admin_url.rsplit_once('/').unwrap().0;
    settings.database.url = SecretString::from(format!("{base}/{database_name}"));
    settings.database.max_connections = 8;
    settings.redis.url = SecretString::from(env("HERALD_TEST_REDIS_URL"));
    settings.kafka.brokers = brokers.to_owned();
    settings.kafka.topic = format!("notifications-{}", Uuid::new_v4().simple());
    settings.kafka.partitions = 4;
    // See scripts/services.sh: tansu's idempotent-producer support is not reliable under load.
    settings.kafka.enable_idempotence = false;
    settings.kafka.message_timeout_ms = 1500;
    settings.outbox.grace_ms = 2000;
    settings.outbox.relay_interval_ms = 200;
    settings.server.port = 0;
    settings.server.workers = 2;

    let database = herald_api::startup::connect_database(&settings)
        .await
        .unwrap();
    Migrator::up(&database, None)
        .await
        .expect("migrating the test database");
    herald_api::kafka::create_topic(
        &settings.kafka,
        &settings.kafka.topic,
        settings.kafka.partitions,
    )
    .await
    .expect("creating the test topic");
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = fresh_settings(&env("HERALD_TEST_KAFKA_BROKERS")).await;
    configure(&mut settings);
    start_app(settings, None).await
}

/// Starts the application on `settings`; creates a tenant unless `tenant` gives one.
pub async fn start_app(settings: Settings, tenant: Option<(Uuid, String)>) -> TestApp {
    herald_api::telemetry::init_logging();
    let database = herald_api::startup::connect_database(&settings)
        .await
        .unwrap();
    let (tenant_id, api_key) = match tenant {
        Some(tenant) => tenant,
        None => create_tenant(&settings, &database, "acme").await,
    };
    let application = Application::build(settings.clone())
        .await
        .expect("building the app");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone().cancelled_owned()));
    TestApp {
        address,
        api_key,
        tenant_id,
        database,
        settings,
        client: reqwest::Client::new(),
        shutdown,
        server: Some(server),
    }
}

pub async fn create_tenant(
    settings: &Settings,
    database: &DatabaseConnection,
    name: &str,
) -> (Uuid, String) {
    let name = format!("{name}-{}", Uuid::new_v4().simple());
    let key = herald_api::cli::create_tenant(settings, &name)
        .await
        .unwrap();
    let tenant = herald_store::tenants::find_tenant_by_name(database, &name)
        .await
        .unwrap()
        .unwrap();
    (tenant.id, key)
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_notification(&self, body: &Value) -> reqwest::Response {
        self.post_json("/v1/notifications", body).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .database
            .query_one(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

pub fn notification(user_ids: &[&str]) -> Value {
    serde_json::json!({
        "user_ids": user_ids,
        "channels": ["email", "sms"],
        "content": {"subject": "Alert", "body": "Pressure {{value}} on {{machine}}"},
        "data": {"value": 7, "machine": "press-4"},
    })
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

pub struct ConsumedRecord {
    pub key: String,
    pub partition: i32,
    pub envelope: NotificationEnvelope<'static>,
    pub notification_id_header: Option<String>,
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed.
pub async fn consume(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ConsumedRecord> {
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
        let message: OwnedMessage = received.expect("consuming").detach();
        let envelope: NotificationEnvelope =
            serde_json::from_slice(message.payload().unwrap()).unwrap();
        let notification_id_header = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == "herald-notification-id")
                .and_then(|header| {
                    header
                        .value
                        .map(|value| String::from_utf8_lossy(value).into_owned())
                })
        });
        records.push(ConsumedRecord {
            key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
            partition: message.partition(),
            envelope: envelope.into_owned(),
            notification_id_header,
        });
    }
    records
}

/// Notification ids seen on the topic, with how often each appeared.
pub fn ids_on_topic(records: &[ConsumedRecord]) -> HashMap<Uuid, usize> {
    let mut seen = HashMap::new();
    for record in records {
        *seen.entry(record.envelope.notification_id).or_insert(0) += 1;
    }
    seen
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker of the test's own, which the test may kill and restart (same port, same data).
pub struct TansuBroker {
    pub port: u16,
    directory: PathBuf,
    process: Option<Child>,
}

impl TansuBroker {
    pub async fn start() -> TansuBroker {
        let directory =
            std::env::temp_dir().join(format!("herald-tansu-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&directory).unwrap();
        let mut broker = TansuBroker {
            port: free_port(),
            directory,
            process: None,
        };
        broker.restart().await;
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        assert!(self.process.is_none(), "the broker is running");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let process = Command::new(env("HERALD_TEST_TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.directory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting tansu");
        self.process = Some(process);
        wait_for_port(self.port).await;
    }

    /// `kill -9`: the broker disappears without a goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await.unwrap();
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
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
