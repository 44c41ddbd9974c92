//! Building and running the API: connections, background tasks (each supervised: a panic is
//! counted and the task restarted), the HTTP server, and an orderly shutdown that commits what was
//! accepted and flushes what was committed.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use herald_config::Settings;
use herald_domain::ValidationLimits;
use herald_kafka::{HeraldProducer, ProducerRole};
use herald_store::tag_cache::TagCaches;
use herald_store::Database;
use herald_telemetry::operations::OperationsServer;
use herald_telemetry::supervise::supervise;
use rdkafka::producer::Producer;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{run_key_directory, KeyListenerConnection, TenantAuthenticator};
use crate::client_address::TrustedProxies;
use crate::ingest::{
    collector_settings, relay_settings, run_collector, run_maintenance, run_outbox_cleaner,
    run_relay, run_scheduler, IngestHandle, MaintenanceSettings, OutboxBacklog, OutboxCleaner,
    Publisher, RequestBytes,
};
use crate::read_permits::ReadPermits;
use crate::references::ReferenceCaches;
use crate::request_span::RequestSpan;
use crate::routes::provider_callbacks::ProviderCallbacks;
use crate::state::{AppState, RequestLimits};
use crate::{metrics, routes, timing};

/// How long shutdown waits for the broker to acknowledge what is in flight; the rest is
/// published by the relay after the restart.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a handler waits for its batch to commit before answering 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of committed notifications the fast path holds while the broker acknowledges them;
/// beyond that the relay takes over.
const MAX_FAST_PATH_BYTES: usize = 64 * 1024 * 1024;
const OUTBOX_CLEANER_CAPACITY: usize = 16_384;

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics`, `/healthz` and profiles on `server.metrics_port`, never on the public port.
    operations: OperationsServer,
    background: BackgroundTasks,
}

struct BackgroundTasks {
    shutdown: CancellationToken,
    collector: JoinHandle<()>,
    supervised: TaskTracker,
    cleaner: JoinHandle<()>,
    fast_path_tasks: TaskTracker,
    producer: HeraldProducer,
}

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    Ok(Database::connect(&settings.database).await?)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        metrics::register_all();
        crate::routes::declare_metrics();
        let database = connect_database(&settings).await?;
        let redis = herald_store::cache::Redis::new(&settings.redis)?;
        let producer =
            herald_kafka::create_producer(&settings.kafka, "herald-api", ProducerRole::Api)?;

        let shutdown = CancellationToken::new();
        let supervised = TaskTracker::new();
        let backlog = Arc::new(OutboxBacklog::default());
        backlog.refresh(herald_store::outbox::backlog(&database).await?);
        let (cleaner, publish_reports) = OutboxCleaner::new(OUTBOX_CLEANER_CAPACITY);
        let fast_path_tasks = TaskTracker::new();
        let publisher = Publisher::start(
            producer.clone(),
            &settings.kafka,
            cleaner,
            MAX_FAST_PATH_BYTES,
            &fast_path_tasks,
        );
        let cleaner = tokio::spawn(run_outbox_cleaner(publish_reports, database.clone()));
        let (submissions, submission_queue) = mpsc::channel(settings.ingest.queue_capacity);
        let collector = tokio::spawn(run_collector(
            submission_queue,
            collector_settings(&settings.ingest),
            database.clone(),
            publisher.clone(),
            backlog.clone(),
            shutdown.clone(),
        ));
        {
            let relay_settings = Arc::new(relay_settings(&settings.outbox));
            let (database, publisher, backlog, shutdown) = (
                database.clone(),
                publisher.clone(),
                backlog.clone(),
                shutdown.clone(),
            );
            supervised.spawn(supervise("relay", move || {
                run_relay(
                    relay_settings.clone(),
                    database.clone(),
                    publisher.clone(),
                    backlog.clone(),
                    shutdown.clone(),
                )
            }));
        }
        {
            let grace = Duration::from_millis(settings.outbox.grace_ms);
            let (database, shutdown) = (database.clone(), shutdown.clone());
            supervised.spawn(supervise("scheduler", move || {
                run_scheduler(database.clone(), grace, shutdown.clone())
            }));
        }
        {
            let retention = settings.retention.clone();
            let window = Duration::from_secs(u64::from(settings.idempotency.window_hours) * 3600);
            let (database, shutdown) = (database.clone(), shutdown.clone());
            supervised.spawn(supervise("maintenance", move || {
                run_maintenance(
                    MaintenanceSettings {
                        interval: Duration::from_millis(retention.maintenance_interval_ms),
                        retention_days: retention.days,
                        premake_days: retention.premake_days,
                        idempotency_window: window,
                    },
                    database.clone(),
                    shutdown.clone(),
                )
            }));
        }
        {
            let (database, shutdown) = (database.clone(), shutdown.clone());
            supervised.spawn(supervise("early_provider_reports", move || {
                routes::provider_callbacks::run_early_reports(database.clone(), shutdown.clone())
            }));
        }
        let tenant_limits = Arc::new(crate::tenant_limits::TenantLimits::new(
            redis.clone(),
            settings.ingest.tenant_notifications_per_second,
            settings.ingest.tenant_notifications_per_day,
        ));
        {
            let (tenant_limits, database, shutdown) =
                (tenant_limits.clone(), database.clone(), shutdown.clone());
            supervised.spawn(supervise("tenant_limits", move || {
                crate::tenant_limits::run_reload(
                    tenant_limits.clone(),
                    database.clone(),
                    shutdown.clone(),
                )
            }));
        }
        let tag_caches = TagCaches::new(redis.clone(), settings.cache.clone());
        let references = ReferenceCaches::new(&tag_caches);
        {
            let (tag_caches, shutdown) = (tag_caches.clone(), shutdown.clone());
            supervised.spawn(supervise("tag_cache", move || {
                tag_caches.clone().run(shutdown.clone())
            }));
        }
        let authenticator = Arc::new(TenantAuthenticator::new(database.clone()));
        {
            let (authenticator, shutdown) = (authenticator.clone(), shutdown.clone());
            let database_settings = settings.database.clone();
            supervised.spawn(supervise("key_directory", move || {
                run_key_directory(
                    authenticator.clone(),
                    KeyListenerConnection::from_settings(&database_settings),
                    shutdown.clone(),
                )
            }));
        }

        let state = web::Data::new(AppState {
            database,
            redis,
            references,
            cache_invalidator: tag_caches.invalidator().clone(),
            producer: producer.clone(),
            topic: settings.kafka.topic.clone(),
            ingest: IngestHandle::new(
                submissions,
                backlog,
                settings.outbox.max_unpublished,
                COMMIT_TIMEOUT,
            ),
            request_bytes: RequestBytes::new(
                settings.ingest.max_bytes_in_flight,
                max_bytes_per_client(&settings),
            ),
            tenant_limits,
            read_permits: ReadPermits::new(
                settings.server.max_concurrent_reads,
                settings.server.max_concurrent_reads_per_tenant,
            ),
            limits: RequestLimits {
                max_body_bytes: settings.server.max_body_bytes,
                body_read_timeout: Duration::from_millis(settings.server.body_read_timeout_ms),
                max_batch_items: settings.ingest.max_batch_items,
                validation: ValidationLimits {
                    max_recipients: settings.ingest.max_recipients,
                    max_groups: settings.groups.max_per_notification,
                    max_record_bytes: settings.kafka.max_record_bytes,
                    max_schedule_ahead_days: settings.retention.max_schedule_ahead_days(),
                },
            },
            allow_private_networks: settings.outbound.allow_private_networks,
            groups: settings.groups.clone(),
            templates: settings.templates.clone(),
            unsubscribe_links: settings.unsubscribe.links(),
        });
        let authenticator = web::Data::new(authenticator);
        let trusted_proxies = web::Data::new(
            TrustedProxies::parse(&settings.server.trusted_proxies).map_err(anyhow::Error::msg)?,
        );
        let provider_callbacks =
            web::Data::new(ProviderCallbacks::from_settings(&settings.providers)?);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::Compress::default())
                .wrap(middleware::from_fn(timing::time_requests))
                .app_data(state.clone())
                .app_data(authenticator.clone())
                .app_data(trusted_proxies.clone())
                .app_data(provider_callbacks.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                // Outermost: every request gets its server span (named by its route template,
                // continuing an incoming `traceparent`) before anything else runs.
                .wrap(tracing_actix_web::TracingLogger::<RequestSpan>::new())
        })
        .disable_signals()
        // Longer than common clients keep an idle connection (Go's net/http: 90 s): a server that
        // closes first races the client's next request on that connection, and a POST that meets a
        // closed connection fails with EOF instead of being retried (seen under k6 with actix's
        // default of 5 s). Idle connections stay bounded by actix's per-worker connection limit.
        .keep_alive(Duration::from_secs(120))
        .backlog(4096)
        .shutdown_timeout(30);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        let operations =
            OperationsServer::bind(&settings.server.host, settings.server.metrics_port, |_| {})?;

        Ok(Application {
            port,
            server,
            operations,
            background: BackgroundTasks {
                shutdown,
                collector,
                supervised,
                cleaner,
                fast_path_tasks,
                producer,
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operations port (`server.metrics_port`; the one bound if 0).
    pub fn metrics_port(&self) -> u16 {
        self.operations.port()
    }

    /// Serves until `shutdown` resolves, then stops taking requests, finishes those in flight,
    /// commits everything queued and flushes what was committed to the broker.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // Served until the very end, so that the drain itself can be watched.
        let operations = self.operations.start();
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
        operations.stop().await;
        Ok(())
    }
}

impl BackgroundTasks {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.collector.await;
        self.supervised.close();
        // The outbox relay may be waiting for a broker that does not answer (up to
        // `kafka.message_timeout_ms` per batch): the batch stays in the outbox and is published
        // again after the restart, so the stop does not wait for it longer than for the fast path.
        if tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, self.supervised.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks (the outbox relay) did not stop in time; what they held stays in the outbox");
        }
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

/// One client's share of the request byte budget: an eighth of it, and at least one body of the
/// largest size (a client must always be able to send one).
fn max_bytes_per_client(settings: &Settings) -> usize {
    (settings.ingest.max_bytes_in_flight / 8).max(settings.server.max_body_bytes)
}
