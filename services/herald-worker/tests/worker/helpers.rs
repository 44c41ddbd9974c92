//! A whole Herald per test: API and simulator in process, the worker in process or as a child
//! process (for `kill -9`), a fresh database, topic and consumer group.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use herald_api::Application;
use herald_config::Settings;
use herald_provider_sim::SimulatorConfig;
use herald_store::Database;
use herald_worker::Worker;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use herald_testing::{
    count, env, execute, free_port, metric_value, wait_for_port, KafkaCluster, PostgresServer,
    RedisServer,
};

pub struct Stack {
    pub settings: Settings,
    pub database: Database,
    pub api: String,
    pub simulator: String,
    pub api_key: String,
    pub tenant_id: Uuid,
    pub client: reqwest::Client,
    stop: CancellationToken,
}

/// Fresh database, topics and group, with both providers pointed at the simulator.
async fn fresh_settings_on(
    servers: Option<&Servers>,
    brokers: &str,
    simulator: &Simulator,
) -> Settings {
    let smtp = simulator.smtp;
    let simulator = simulator.http.as_str();
    let mut settings = match servers {
        Some(servers) => {
            herald_testing::fresh_settings_on(
                &servers.postgres_admin_url,
                &servers.redis_url,
                brokers,
            )
            .await
        }
        None => herald_testing::fresh_settings(brokers).await,
    };
    settings.providers.sendgrid.base_url = simulator.to_owned();
    settings.providers.twilio.base_url = simulator.to_owned();
    for (provider, base_url) in settings.providers.kind_base_urls_mut() {
        *base_url = format!("{simulator}/{provider}");
    }
    settings.providers.smtp.url = SecretString::from(format!("smtp://{smtp}"));
    settings
}

/// A provider simulator: its HTTP APIs and its SMTP sink.
pub struct Simulator {
    pub http: String,
    pub smtp: std::net::SocketAddr,
}

pub async fn start_simulator() -> Simulator {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let smtp = smtp_listener.local_addr().unwrap();
    let server =
        herald_provider_sim::run_with_smtp(listener, smtp_listener, SimulatorConfig::default())
            .unwrap();
    tokio::spawn(server);
    Simulator { http, smtp }
}

/// Where a stack's PostgreSQL and Redis are, when a test runs its own.
pub struct Servers {
    pub postgres_admin_url: String,
    pub redis_url: String,
}

/// API (in process) and simulator running; the worker is started by the test.
pub async fn start_stack(brokers: Option<&str>) -> Stack {
    start_stack_with(brokers, None, |_| {}).await
}

/// Like [`start_stack`], on the test's own servers if given, with `configure` applied to the
/// settings before anything starts.
pub async fn start_stack_with(
    brokers: Option<&str>,
    servers: Option<&Servers>,
    configure: impl FnOnce(&mut Settings),
) -> Stack {
    let mut stack = prepare_stack(brokers, servers, configure).await;
    let application = Application::build(stack.settings.clone()).await.unwrap();
    stack.api = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped(stack.stop.clone().cancelled_owned()));
    stack
}

/// Settings, database, tenant and simulator, but no API: the test runs it (as a process, say).
pub async fn prepare_stack(
    brokers: Option<&str>,
    servers: Option<&Servers>,
    configure: impl FnOnce(&mut Settings),
) -> Stack {
    herald_telemetry::init_logging();
    let simulator = start_simulator().await;
    let brokers = brokers
        .map(str::to_owned)
        .unwrap_or_else(|| env("HERALD_TEST_KAFKA_BROKERS"));
    let mut settings = fresh_settings_on(servers, &brokers, &simulator).await;
    configure(&mut settings);
    let database = herald_testing::connect(&settings).await;
    let name = format!("tenant-{}", Uuid::new_v4().simple());
    let api_key = herald_api::cli::create_tenant(&settings, &name)
        .await
        .unwrap();
    let tenant_id = herald_store::tenants::find_tenant_id_by_key_hash(
        &database,
        &herald_api::auth::hash_api_key(&api_key),
    )
    .await
    .unwrap()
    .unwrap();
    Stack {
        settings,
        database,
        api: String::new(),
        simulator: simulator.http,
        api_key,
        tenant_id,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        stop: CancellationToken::new(),
    }
}

/// The API as a child process on `port` (so a test can `kill -9` it).
pub fn api_process(settings: &Settings, port: u16) -> Child {
    api_process_with(settings, port, &[])
}

/// Like [`api_process`], with more environment variables (`OTEL_*`, say).
pub fn api_process_with(
    settings: &Settings,
    port: u16,
    extra_environment: &[(&str, String)],
) -> Child {
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_herald-worker")).with_file_name("herald-api");
    assert!(
        binary.exists(),
        "{} is built by `cargo test --workspace`",
        binary.display()
    );
    Command::new(binary)
        .arg("serve")
        .envs(herald_testing::process_environment(settings))
        .env("HERALD_SERVER__PORT", port.to_string())
        .env("HERALD_SERVER__WORKERS", "2")
        .envs(
            extra_environment
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .stdout(process_log("api", port))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting herald-api")
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A worker running in this process until the returned token is cancelled.
pub async fn start_worker(
    settings: &Settings,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let worker = Worker::build(settings.clone()).await.unwrap();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run_until_stopped(stop.clone().cancelled_owned()));
    (stop, handle)
}

/// SIGTERM, as Ctrl-C or Kubernetes would send.
pub fn terminate(child: &Child) {
    let pid = child.id().expect("the child runs");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A worker as a child process (so a test can `kill -9` it); its metrics on `metrics_port`.
pub fn worker_process(settings: &Settings, metrics_port: u16) -> Child {
    worker_process_with(settings, metrics_port, &[])
}

/// Like [`worker_process`], with more environment variables (`OTEL_*`, say).
pub fn worker_process_with(
    settings: &Settings,
    metrics_port: u16,
    extra_environment: &[(&str, String)],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald-worker"))
        .envs(herald_testing::process_environment(settings))
        .env("HERALD_WORKER__METRICS_PORT", metrics_port.to_string())
        .envs(
            extra_environment
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .stdout(process_log("worker", metrics_port))
        .stderr(process_log("worker", metrics_port))
        .kill_on_drop(true)
        .spawn()
        .expect("starting herald-worker")
}

/// Child process logs go to `$HERALD_TEST_LOG_DIR/<name>-<port>.log` when that is set.
fn process_log(name: &str, port: u16) -> Stdio {
    match std::env::var("HERALD_TEST_LOG_DIR") {
        Ok(directory) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{directory}/{name}-{port}.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null()),
        Err(_) => Stdio::null(),
    }
}

/// Waits until a worker process on `metrics_port` holds partitions (its `/readyz` answers 2xx).
pub async fn wait_until_ready(metrics_port: u16) {
    let url = format!("http://127.0.0.1:{metrics_port}/readyz");
    for _ in 0..600 {
        if let Ok(response) = reqwest::get(&url).await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the worker was not ready within 60 s");
}

/// Partitions a worker process holds, as its `/readyz` says (0 when it does not answer).
pub async fn assigned_partitions(metrics_port: u16) -> u64 {
    let readiness: Option<Value> =
        match reqwest::get(format!("http://127.0.0.1:{metrics_port}/readyz")).await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
    readiness
        .and_then(|readiness| readiness["assigned_partitions"].as_u64())
        .unwrap_or(0)
}

/// Partitions a worker process holds of each topic it consumes, as its `/readyz` says.
pub async fn assigned_partitions_by_topic(metrics_port: u16) -> BTreeMap<String, u64> {
    let readiness: Option<Value> =
        match reqwest::get(format!("http://127.0.0.1:{metrics_port}/readyz")).await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
    readiness
        .and_then(|readiness| {
            serde_json::from_value(readiness["assigned_partitions_by_topic"].clone()).ok()
        })
        .unwrap_or_default()
}

/// Waits until each worker process on `metrics_ports` holds partitions of both topics it consumes
/// (a group's rebalances take a heartbeat or two per member that joins; with the tests' 4
/// partitions per topic, up to 4 workers each get some of each).
pub async fn wait_until_each_holds_partitions(metrics_ports: &[u16]) {
    for _ in 0..600 {
        let mut all = true;
        for port in metrics_ports {
            let by_topic = assigned_partitions_by_topic(*port).await;
            all &= by_topic.len() == 2 && by_topic.values().all(|held| *held > 0);
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the workers on {metrics_ports:?} did not all hold partitions of each topic within 60 s"
    );
}

/// Metrics of a worker process, as text.
pub async fn worker_metrics(metrics_port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

impl Stack {
    /// Another tenant in the same database: its id and API key.
    pub async fn create_other_tenant(&self, name: &str) -> (Uuid, String) {
        let api_key = herald_api::cli::create_tenant(&self.settings, name)
            .await
            .unwrap();
        let tenant_id = herald_store::tenants::find_tenant_id_by_key_hash(
            &self.database,
            &herald_api::auth::hash_api_key(&api_key),
        )
        .await
        .unwrap()
        .unwrap();
        (tenant_id, api_key)
    }

    pub async fn put_user(&self, user_id: &str, body: Value) {
        let response = self
            .client
            .put(format!("{}/v1/users/{user_id}", self.api))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, 200, "{:?}", response.text().await);
    }

    pub async fn get_user(&self, user_id: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/v1/users/{user_id}", self.api))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Inserts `count` users `user-0..` with email and phone straight into PostgreSQL.
    pub async fn insert_users(&self, count: usize) {
        let tenant_id = self.tenant_id;
        execute(
            &self.database,
            &format!(
                "INSERT INTO users (tenant_id, id, email, phone) \
                 SELECT '{tenant_id}', 'user-' || i, 'user' || i || '@example.com', '+1415555' || lpad(i::text, 4, '0') \
                 FROM generate_series(0, {}) AS i",
                count - 1
            ),
        )
        .await;
    }

    pub async fn notify(&self, body: Value) -> String {
        let response = self
            .client
            .post(format!("{}/v1/notifications", self.api))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn notify_batch(&self, items: Vec<Value>) {
        let response = self
            .client
            .post(format!("{}/v1/notifications/batch", self.api))
            .bearer_auth(&self.api_key)
            .json(&json!({ "notifications": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }

    /// One notification per user `user-{index}` of `users` on `channel`, posted in batches of 1000.
    pub async fn notify_each_user(&self, users: std::ops::Range<usize>, channel: &str) {
        let indices: Vec<usize> = users.collect();
        for chunk in indices.chunks(1000) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|index| alert(&[&format!("user-{index}")], &[channel]))
                .collect();
            self.notify_batch(items).await;
        }
    }

    pub async fn notification(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/notifications/{id}", self.api))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls until the notification reaches one of the final statuses.
    pub async fn wait_until_final(&self, id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let view = self.notification(id).await;
            let status = view["status"].as_str().unwrap_or_default();
            if ["delivered", "partially_delivered", "failed"].contains(&status) {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {status} after {timeout:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        count(&self.database, sql).await
    }

    /// The documented in-doubt set (docs/DESIGN.md): provider calls whose worker died before
    /// recording them, and calls sent that got no answer (a timeout on a loaded machine, a
    /// connection lost mid-request); both are made again with the same reference, so a provider
    /// that does not honour it may get them twice. Not a call that never started (refused to
    /// connect, a circuit open, a template not read).
    pub async fn in_doubt_attempts(&self) -> u64 {
        self.count(
            "SELECT count(*) FROM delivery_attempts \
             WHERE outcome = 'in_doubt' \
                OR (outcome IN ('retryable_error', 'gave_up') AND http_status IS NULL \
                    AND (error LIKE '%timed out%' OR error LIKE '% request failed%'))",
        )
        .await as u64
    }

    /// Waits until `sql` (a count) reaches `expected`.
    pub async fn wait_for_count(&self, sql: &str, expected: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count = self.count(sql).await;
            if count >= expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sql}: {count} of {expected} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn simulator_stats(&self) -> Value {
        self.client
            .get(format!("{}/_sim/stats", self.simulator))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn configure_provider(&self, provider: &str, behaviour: Value) {
        let response = self
            .client
            .put(format!("{}/_sim/config/{provider}", self.simulator))
            .json(&behaviour)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    pub async fn received(&self, provider: &str) -> Value {
        self.client
            .get(format!(
                "{}/_sim/received?provider={provider}&limit=100",
                self.simulator
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// [`alert`] to the users `user-0` .. `user-{count - 1}` (as `Stack::insert_users` creates them).
pub fn alert_to_first_users(count: usize, channels: &[&str]) -> Value {
    let user_ids: Vec<String> = (0..count).map(|index| format!("user-{index}")).collect();
    let user_refs: Vec<&str> = user_ids.iter().map(String::as_str).collect();
    alert(&user_refs, channels)
}

/// A signed webhook contact's secret, for tests' recipients.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn alert(user_ids: &[&str], channels: &[&str]) -> Value {
    json!({
        "user_ids": user_ids,
        "channels": channels,
        "content": {"subject": "Pressure alert", "body": "Pressure {{value}} on {{machine}}"},
        "data": {"value": 7, "machine": "press-4"},
    })
}
