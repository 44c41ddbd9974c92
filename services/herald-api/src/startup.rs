//! Building and running the API: connections, background tasks, the HTTP server, and an orderly
//! shutdown that commits what was accepted and flushes what was committed.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use herald_config::Settings;
use herald_domain::ValidationLimits;
use herald_store::DatabaseConnection;
use rdkafka::producer::{FutureProducer, Producer};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TenantAuthenticator;
use crate::ingest::collector_settings;
use crate::ingest::{
    run_collector, run_outbox_cleaner, run_relay, IngestHandle, OutboxCleaner, Publisher,
    UnpublishedGauge,
};
use crate::state::{AppState, RequestLimits};
use crate::{kafka, metrics, routes, timing};

/// How long shutdown waits for the broker to acknowledge what is in flight; the rest is
/// published by the relay after the restart.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a handler waits for its batch to commit before answering 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Fast-path batches published concurrently; beyond that the relay takes over.
const MAX_FAST_PATH_BATCHES: usize = 64;
const OUTBOX_CLEANER_CAPACITY: usize = 16_384;

pub struct Application {
    port: u16,
    server: Server,
    background: BackgroundTasks,
}

struct BackgroundTasks {
    shutdown: CancellationToken,
    collector: JoinHandle<()>,
    relay: JoinHandle<()>,
    cleaner: JoinHandle<()>,
    fast_path_tasks: TaskTracker,
    producer: FutureProducer,
}

pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    Ok(herald_store::connect(&settings.database).await?)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        metrics::register_all();
        let database = connect_database(&settings).await?;
        let redis_client = redis::Client::open(settings.redis.url.expose_secret())?;
        let redis_timeout = Duration::from_millis(settings.redis.timeout_ms);
        let redis = redis::aio::ConnectionManager::new_with_config(
            redis_client,
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(redis_timeout)
                .set_response_timeout(redis_timeout)
                .set_number_of_retries(2),
        )
        .await?;
        let producer = kafka::create_producer(&settings.kafka)?;

        let shutdown = CancellationToken::new();
        let unpublished = Arc::new(UnpublishedGauge::default());
        unpublished.set(herald_store::outbox::count_unpublished(&database).await?);
        let (cleaner, published_batches) = OutboxCleaner::new(OUTBOX_CLEANER_CAPACITY);
        let fast_path_tasks = TaskTracker::new();
        let publisher = Publisher::start(
            producer.clone(),
            &settings.kafka.topic,
            cleaner,
            MAX_FAST_PATH_BATCHES,
            &fast_path_tasks,
        );
        let cleaner = tokio::spawn(run_outbox_cleaner(
            published_batches,
            database.clone(),
            unpublished.clone(),
        ));
        let (submissions, submission_queue) = mpsc::channel(settings.ingest.queue_capacity);
        let collector = tokio::spawn(run_collector(
            submission_queue,
            collector_settings(&settings.ingest),
            database.clone(),
            publisher.clone(),
            unpublished.clone(),
            shutdown.clone(),
        ));
        let relay = tokio::spawn(run_relay(
            crate::ingest::relay_settings(&settings.outbox),
            database.clone(),
            publisher,
            unpublished.clone(),
            shutdown.clone(),
        ));

        let state = web::Data::new(AppState {
            database: database.clone(),
            redis,
            redis_timeout,
            producer: producer.clone(),
            topic: settings.kafka.topic.clone(),
            ingest: IngestHandle::new(
                submissions,
                unpublished,
                settings.outbox.max_unpublished,
                COMMIT_TIMEOUT,
            ),
            limits: RequestLimits {
                max_body_bytes: settings.server.max_body_bytes,
                max_batch_items: settings.ingest.max_batch_items,
                validation: ValidationLimits {
                    max_recipients: settings.ingest.max_recipients,
                },
            },
        });
        let authenticator = web::Data::new(Arc::new(TenantAuthenticator::new(database)));

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::Compress::default())
                .wrap(middleware::from_fn(timing::time_requests))
                .app_data(state.clone())
                .app_data(authenticator.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .disable_signals()
        .backlog(4096)
        .shutdown_timeout(30);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();

        Ok(Application {
            port,
            server,
            background: BackgroundTasks {
                shutdown,
                collector,
                relay,
                cleaner,
                fast_path_tasks,
                producer,
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then stops taking requests, finishes those in flight,
    /// commits everything queued and flushes what was committed to the broker.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let server_handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => result??,
            _ = shutdown => {
                tracing::info!("shutting down: finishing requests in flight");
                server_handle.stop(true).await;
                server.await??;
            }
        }
        self.background.stop().await;
        Ok(())
    }
}

impl BackgroundTasks {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.collector.await;
        let _ = self.relay.await;
        self.fast_path_tasks.close();
        if tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, self.fast_path_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("broker acknowledgements still pending at shutdown; the relay will publish them after restart");
        }
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(1))).await;
        // The cleaner ends once the last publisher (and its sender) is gone.
        if tokio::time::timeout(Duration::from_secs(5), self.cleaner)
            .await
            .is_err()
        {
            tracing::warn!("outbox cleaner did not finish; the relay will re-publish its batches");
        }
        tracing::info!("shutdown complete");
    }
}
