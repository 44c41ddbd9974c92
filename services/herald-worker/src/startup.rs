//! Building and running the worker: connections, the consumer dispatcher, the retry sweeper, the
//! metrics endpoint, and a shutdown that lets every partition finish its batch within a deadline.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use herald_config::Settings;
use prometheus::{Encoder, TextEncoder};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::RetryPolicy;
use crate::consumer::{
    create_consumer, run_committer, run_dispatcher, OffsetTracker, PartitionSettings,
};
use crate::context::WorkerContext;
use crate::dead_letter::DeadLetters;
use crate::metrics;
use crate::recipients::Recipients;
use crate::sender::Sender;
use crate::sweeper::run_sweeper;

const OFFSET_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

pub struct Worker {
    settings: Settings,
    context: Arc<WorkerContext>,
    metrics_server: Server,
    metrics_port: u16,
}

impl Worker {
    pub async fn build(settings: Settings) -> anyhow::Result<Worker> {
        metrics::register_all();
        let database = herald_store::connect(&settings.database).await?;
        let redis_timeout = Duration::from_millis(settings.redis.timeout_ms);
        let redis = redis::aio::ConnectionManager::new_with_config(
            redis::Client::open(settings.redis.url.expose_secret())?,
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(redis_timeout)
                .set_response_timeout(redis_timeout)
                .set_number_of_retries(2),
        )
        .await?;
        let dead_letter_producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka.brokers)
            .set("client.id", "herald-worker-dead-letters")
            .set(
                "enable.idempotence",
                settings.kafka.enable_idempotence.to_string(),
            )
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()?;
        let context = Arc::new(WorkerContext {
            recipients: Recipients::new(
                database.clone(),
                redis,
                redis_timeout,
                settings.worker.user_cache_ttl_seconds,
            ),
            database,
            sender: Sender::new(&settings)?,
            retry_policy: RetryPolicy {
                max_attempts: settings.worker.max_attempts,
                base: Duration::from_millis(settings.worker.retry_base_ms),
                max: Duration::from_millis(settings.worker.retry_max_ms),
            },
            lease: Duration::from_millis(settings.worker.lease_ms),
            dead_letters: DeadLetters::new(dead_letter_producer, &settings.kafka.topic),
        });

        let listener =
            TcpListener::bind((settings.server.host.as_str(), settings.worker.metrics_port))?;
        let metrics_port = listener.local_addr()?.port();
        let metrics_server = HttpServer::new(|| {
            App::new()
                .route("/metrics", web::get().to(metrics_text))
                .route(
                    "/healthz",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();

        Ok(Worker {
            settings,
            context,
            metrics_server,
            metrics_port,
        })
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Consumes and delivers until `shutdown` resolves; then every partition finishes the batch in
    /// hand (within `worker.drain_timeout_ms`) and commits its offsets.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (consumer, partitions) = create_consumer(&self.settings)?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let partition_settings = Arc::new(PartitionSettings {
            batch_size: self.settings.worker.batch_size,
            batch_linger: Duration::from_millis(self.settings.worker.batch_linger_ms),
            buffer: self.settings.worker.partition_buffer,
        });
        let offsets = Arc::new(OffsetTracker::default());
        let dispatcher = tokio::spawn(run_dispatcher(
            consumer.clone(),
            partitions,
            offsets.clone(),
            self.context.clone(),
            partition_settings,
            tasks.clone(),
            stop.clone(),
        ));
        let committer = tokio::spawn(run_committer(
            consumer.clone(),
            offsets,
            OFFSET_COMMIT_INTERVAL,
            tasks.clone(),
            stop.clone(),
        ));
        let sweeper = tokio::spawn(run_sweeper(
            self.context.clone(),
            Duration::from_millis(self.settings.worker.sweep_interval_ms),
            stop.clone(),
        ));
        let metrics_handle = self.metrics_server.handle();
        let metrics_server = tokio::spawn(self.metrics_server);

        shutdown.await;
        tracing::info!("shutting down: finishing the batches in hand");
        stop.cancel();
        let _ = dispatcher.await;
        let _ = sweeper.await;
        tasks.close();
        let drain_timeout = Duration::from_millis(self.settings.worker.drain_timeout_ms);
        if tokio::time::timeout(drain_timeout, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "partitions still busy at the drain deadline; their records will be redelivered"
            );
        }
        // The last, synchronous commit of what the partitions recorded.
        let _ = tokio::time::timeout(Duration::from_secs(10), committer).await;
        drop(consumer);
        metrics_handle.stop(true).await;
        let _ = metrics_server.await;
        tracing::info!("worker stopped");
        Ok(())
    }
}

async fn metrics_text() -> HttpResponse {
    let mut buffer = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&metrics::REGISTRY.gather(), &mut buffer) {
        tracing::error!(%error, "encoding metrics failed");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buffer)
}
