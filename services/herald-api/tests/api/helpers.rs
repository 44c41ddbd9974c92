//! `spawn_app()` and friends: a fresh database, topic and tenant per test, the application bound
//! to port 0, and Kafka helpers to read what it produced.

use std::collections::HashMap;
use std::time::Duration;

use herald_api::Application;
use herald_config::Settings;
use herald_domain::NotificationEnvelope;
use herald_store::Database;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use herald_testing::{
    count, env, eventually, execute, free_port, fresh_settings, metric_value, wait_for_port,
    KafkaCluster,
};

pub struct TestApp {
    pub address: String,
    /// The operations port's address: `/metrics`, `/healthz`, `/debug/pprof/*`.
    pub metrics_address: String,
    pub api_key: String,
    pub tenant_id: Uuid,
    pub database: Database,
    pub settings: Settings,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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
    herald_telemetry::init_logging();
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
    let metrics_address = format!("http://127.0.0.1:{}", application.metrics_port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone().cancelled_owned()));
    TestApp {
        address,
        metrics_address,
        api_key,
        tenant_id,
        database,
        settings,
        client: reqwest::Client::new(),
        shutdown,
        server: Some(server),
    }
}

pub async fn create_tenant(settings: &Settings, database: &Database, name: &str) -> (Uuid, String) {
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
    /// Any request with the tenant's key, and a JSON body if given.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

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

    /// The API's metrics, from its operations port.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "/metrics on the operations port");
        response.text().await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        count(&self.database, sql).await
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
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed.
pub async fn consume(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ConsumedRecord> {
    herald_testing::consume_raw(brokers, topic, expected, timeout)
        .await
        .into_iter()
        .map(|record| ConsumedRecord {
            key: String::from_utf8(record.key).unwrap(),
            partition: record.partition,
            envelope: serde_json::from_slice::<NotificationEnvelope>(&record.payload)
                .unwrap()
                .into_owned(),
        })
        .collect()
}

/// Notification ids seen on the topic, with how often each appeared.
pub fn ids_on_topic(records: &[ConsumedRecord]) -> HashMap<Uuid, usize> {
    let mut seen = HashMap::new();
    for record in records {
        *seen.entry(record.envelope.notification_id).or_insert(0) += 1;
    }
    seen
}
