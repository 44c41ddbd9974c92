//! Building and running the worker: its session, lanes, recorder, consumer, queue pumps and
//! sweeper (each supervised: a panic is counted and the task restarted), the metrics and readiness
//! endpoint, and a shutdown that leaves nothing in doubt.
//!
//! Shutdown order (its phases are `shutdown.rs`): stop taking records and claims → commit offsets
//! and leave the group → let the lanes send what they hold, these three within
//! `worker.drain_timeout_ms` of the signal whatever the broker's state → wait for the calls in
//! flight → write every outcome → return what was never sent to the queue → end the session.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use herald_channels::registry::build_providers;
use herald_config::Settings;
use herald_store::deliveries::{self, DeliveryKey};
use herald_store::metrics::CacheKind;
use herald_store::tag_cache::TagCaches;
use herald_store::Database;
use herald_telemetry::supervise::supervise;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::backoff::RetryPolicy;
use crate::cancellations::{run_cancellation_watch, CancelledNotifications};
use crate::circuit_breaker::CircuitBreakerSettings;
use crate::consumer::{consumed_topics, run_consumer, ConsumerStatus};
use crate::content::ContentCache;
use crate::context::{Lanes, WorkerContext};
use crate::dead_letter::DeadLetters;
use crate::group_expander::{run_group_expander, GroupExpander};
use crate::held::HeldDelivery;
use crate::lane::Lane;
use crate::metrics;
use crate::pump::run_pump;
use crate::rate_limit::SharedRateLimits;
use crate::recipients::Recipients;
use crate::recorder::{self, run_recorder};
use crate::routing::Router;
use crate::session::Session;
use crate::shutdown::{Phase, ShutdownPhases};
use crate::status_events::StatusEvents;
use crate::sweeper::run_sweeper;
use crate::templates::TemplateCache;

/// Outcomes waiting for the recorder before the lanes stop sending.
const RECORDER_CAPACITY: usize = 8192;

pub struct Worker {
    settings: Settings,
    context: Arc<WorkerContext>,
    recorder_inbox: recorder::RecorderInbox,
    dead_letters: DeadLetters,
    group_expander: Arc<GroupExpander>,
    status_events: StatusEvents,
    status: Arc<ConsumerStatus>,
    tag_caches: TagCaches,
    operations: herald_telemetry::operations::OperationsServer,
}

impl Worker {
    pub async fn build(settings: Settings) -> anyhow::Result<Worker> {
        metrics::register_all();
        let database = Database::connect(&settings.database).await?;
        let status_events = StatusEvents::build(&settings, database.clone())?;
        // One Redis handle for the tag cache (recipients) and the providers' shared rate limits.
        let redis = herald_store::cache::Redis::new(&settings.redis)?;
        let tag_caches = TagCaches::new(redis.clone(), settings.cache.clone());
        let mut rate_limit = settings.providers.rate_limit;
        // A Retry-After never holds a provider longer than it would hold one retry.
        rate_limit.max_pause_ms = rate_limit.max_pause_ms.min(settings.worker.retry_max_ms);
        let rate_limits = SharedRateLimits {
            redis,
            group_id: settings.worker.group_id.clone(),
            config: rate_limit,
        };
        let dead_letters = DeadLetters::new(
            herald_kafka::create_producer(
                &settings.kafka,
                "herald-worker-dead-letters",
                herald_kafka::ProducerRole::Worker,
            )?,
            &settings.kafka.topic,
        );
        let providers = build_providers(&settings.providers, &settings.outbound)?;
        let longest_send = providers
            .iter()
            .map(|provider_lane| Duration::from_millis(provider_lane.lane.timeout_ms))
            .max()
            .unwrap_or_default();
        let circuit = CircuitBreakerSettings::from(&settings.providers.circuit_breaker);
        let lanes = Lanes::new(
            providers
                .into_iter()
                .map(|provider_lane| {
                    let lane =
                        Lane::new(provider_lane.provider, provider_lane.lane, circuit.clone())
                            .with_shared_rate_limit(&rate_limits)
                            .with_tenant_held_share(settings.worker.tenant_held_share);
                    Arc::new(match provider_lane.failover {
                        Some(failover) => lane.with_failover(failover),
                        None => lane,
                    })
                })
                .collect(),
        );
        let lease = Duration::from_millis(settings.worker.lease_ms);
        let session = Arc::new(
            Session::register(
                database.clone(),
                lease,
                Duration::from_millis(settings.worker.heartbeat_interval_ms()),
                longest_send,
            )
            .await?,
        );
        let group_expander = Arc::new(GroupExpander::new(
            database.clone(),
            session.clone(),
            herald_kafka::create_producer(
                &settings.kafka,
                "herald-worker-group-expansion",
                herald_kafka::ProducerRole::Worker,
            )?,
            settings.groups.clone(),
            &settings.kafka,
            lease,
        ));
        let (recorder, recorder_inbox) = recorder::start(RECORDER_CAPACITY);
        let router = Router::new(database.clone());
        let context = Arc::new(WorkerContext {
            consumer_group: settings.worker.group_id.clone(),
            contents: ContentCache::new(
                database.clone(),
                settings.worker.content_cache_bytes,
                router.clone(),
            ),
            router,
            templates: TemplateCache::new(
                database.clone(),
                settings.templates.compiled_cache_entries,
            ),
            unsubscribe_links: settings.unsubscribe.links().map(Arc::new),
            recipients: Recipients::new(database.clone(), tag_caches.cache(CacheKind::Recipient)),
            database,
            session,
            recorder,
            lanes,
            cancelled: CancelledNotifications::new(),
            retry_policy: RetryPolicy {
                max_attempts: settings.worker.max_attempts,
                base: Duration::from_millis(settings.worker.retry_base_ms),
                max: Duration::from_millis(settings.worker.retry_max_ms),
            },
        });

        let status = Arc::new(ConsumerStatus::default());
        let readiness = web::Data::new((context.clone(), status.clone()));
        let operations = herald_telemetry::operations::OperationsServer::bind(
            &settings.server.host,
            settings.worker.metrics_port,
            move |config| {
                config
                    .app_data(readiness.clone())
                    .route("/readyz", web::get().to(readyz));
            },
        )?;

        Ok(Worker {
            settings,
            context,
            recorder_inbox,
            dead_letters,
            group_expander,
            status_events,
            status,
            tag_caches,
            operations,
        })
    }

    /// The port of `/metrics`, `/healthz` and `/readyz` (`worker.metrics_port`; the one bound if 0).
    pub fn metrics_port(&self) -> u16 {
        self.operations.port()
    }

    /// Consumes and delivers until `shutdown` resolves; then shuts down in order (module docs).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let context = self.context;
        let settings = self.settings;
        let phases = ShutdownPhases::new();
        let heartbeat_stop = phases.token(Phase::EndSession);
        let intake_stop = phases.token(Phase::StopIntake);
        let intake = TaskTracker::new();
        let sends = TaskTracker::new();

        let heartbeat = {
            let (session, stop) = (context.session.clone(), heartbeat_stop.clone());
            tokio::spawn(supervise("heartbeat", move || {
                let (session, stop) = (session.clone(), stop.clone());
                async move { session.run_heartbeat(stop).await }
            }))
        };
        // Admission reads recipients through it until intake stops; it stops with the heartbeat.
        let tag_cache = {
            let (tag_caches, stop) = (self.tag_caches.clone(), heartbeat_stop.clone());
            tokio::spawn(supervise("tag_cache", move || {
                tag_caches.clone().run(stop.clone())
            }))
        };
        // Lanes ask it until they stop, so it stops with the heartbeat, after them.
        let cancellation_watch = {
            let (context, stop) = (context.clone(), heartbeat_stop.clone());
            let interval = Duration::from_millis(settings.worker.sweep_interval_ms);
            tokio::spawn(supervise("cancellation_watch", move || {
                run_cancellation_watch(
                    context.database.clone(),
                    context.cancelled.clone(),
                    interval,
                    stop.clone(),
                )
            }))
        };
        let recorder = tokio::spawn(run_recorder(
            context.database.clone(),
            self.dead_letters,
            self.recorder_inbox,
            phases.token(Phase::FinishRecording).clone(),
        ));
        let mut lane_runs = Vec::new();
        for lane in context.lanes.iter() {
            lane_runs.push(tokio::spawn(lane.clone().run(
                context.send_services(),
                sends.clone(),
                phases.clone(),
            )));
            let (context, lane, stop) = (context.clone(), lane.clone(), intake_stop.clone());
            let interval = Duration::from_millis(settings.worker.sweep_interval_ms);
            intake.spawn(supervise("queue_pump", move || {
                run_pump(context.clone(), lane.clone(), interval, stop.clone())
            }));
        }
        {
            let (context, stop) = (context.clone(), intake_stop.clone());
            let lease = Duration::from_millis(settings.worker.lease_ms);
            let interval = Duration::from_millis(settings.worker.sweep_interval_ms);
            intake.spawn(supervise("sweeper", move || {
                run_sweeper(context.clone(), lease, interval, stop.clone())
            }));
        }
        {
            let (expander, stop) = (self.group_expander.clone(), intake_stop.clone());
            intake.spawn(supervise("group_expander", move || {
                run_group_expander(expander.clone(), stop.clone())
            }));
        }
        self.status_events.spawn(&intake, intake_stop);
        for topic in consumed_topics(&settings) {
            let (context, status, stop) =
                (context.clone(), self.status.clone(), intake_stop.clone());
            let settings = settings.clone();
            intake.spawn(supervise("consumer", move || {
                run_consumer(
                    settings.clone(),
                    topic.clone(),
                    context.clone(),
                    status.clone(),
                    stop.clone(),
                )
            }));
        }
        let operations = self.operations.start();

        shutdown.await;
        // Everything up to the lanes' last send happens within the drain timeout, whatever the
        // broker's state: a stop that waited for a broker that does not answer would outlast the
        // grace period of whoever stops the worker (Kubernetes, `make run`) and end in a SIGKILL.
        let drain_timeout = Duration::from_millis(settings.worker.drain_timeout_ms);
        let drain_deadline = tokio::time::Instant::now() + drain_timeout;
        tracing::info!(
            drain_timeout_ms = settings.worker.drain_timeout_ms,
            "shutting down: no new records or claims; sending what is held"
        );
        phases.begin(Phase::StopIntake);
        intake.close();
        stop_intake_by(&intake, drain_deadline).await;

        phases.begin(Phase::Drain);
        let abandon_at_deadline = phases.abandon_at(drain_deadline);
        let mut unsent: Vec<HeldDelivery> = Vec::new();
        for run in lane_runs {
            if let Ok(rest) = run.await {
                unsent.extend(rest);
            }
        }
        abandon_at_deadline.abort();
        sends.close();
        // Calls in flight end within their provider timeout; handing their outcomes over can wait on
        // a recorder that cannot write (the database away): bounded, then they are in doubt.
        if tokio::time::timeout(drain_timeout, sends.wait())
            .await
            .is_err()
        {
            tracing::error!("calls in flight did not hand over their outcomes; they are in doubt");
        }
        // A call that ended after its lane stopped handed the delivery parked behind it (a tenant's
        // destination, `destinations.rs`) back to the lane's queue: unsent, it goes back too.
        for lane in context.lanes.iter() {
            unsent.extend(lane.take_unsent());
        }

        // Every outcome is submitted: the recorder writes them all and stops.
        let session = context.session.id();
        let database = context.database.clone();
        phases.begin(Phase::FinishRecording);
        let outstanding = match tokio::time::timeout(Duration::from_secs(60), recorder).await {
            Ok(Ok(outstanding)) => outstanding,
            _ => {
                tracing::error!("the recorder did not finish; unrecorded calls are in doubt");
                Default::default()
            }
        };
        release_unsent(&database, session, unsent, outstanding).await;
        phases.begin(Phase::EndSession);
        let _ = heartbeat.await;
        let _ = cancellation_watch.await;
        let _ = tag_cache.await;
        if let Err(error) = herald_store::sessions::end(&database, session).await {
            tracing::warn!(%error, "ending the worker session failed; it will expire");
        }
        operations.stop().await;
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// Waits for the intake's tasks (consumers, queue pumps, sweeper, group expander, status events)
/// to stop, until `drain_deadline`. A task still waiting then waits for the broker: a last offset
/// commit, a produce that is never acknowledged (the status-event relay waits up to
/// `kafka.message_timeout_ms` for one). The worker stops without it; that is as safe as a crash,
/// which the protocol is made for: the records since the last commit are read again by the
/// partitions' next owner, and a relayed event's lease runs out and it is relayed again.
async fn stop_intake_by(intake: &TaskTracker, drain_deadline: tokio::time::Instant) {
    if tokio::time::timeout_at(drain_deadline, intake.wait())
        .await
        .is_ok()
    {
        return;
    }
    tracing::warn!(
        tasks_still_running = intake.len(),
        "the intake did not stop within the drain timeout (is the broker reachable?): stopping \
         without it and without a last offset commit; the records since the last commit are read \
         again by the partitions' next owner, which sends none of them twice"
    );
}

/// Returns claims that were never sent to the queue: nothing of them is in doubt.
async fn release_unsent(
    database: &Database,
    session: uuid::Uuid,
    unsent: Vec<HeldDelivery>,
    mut outstanding: recorder::Outstanding,
) {
    if unsent.is_empty() {
        return;
    }
    let claims: Vec<(DeliveryKey, i32)> = unsent
        .iter()
        .filter(|delivery| delivery.session == session)
        .map(|delivery| (delivery.key, delivery.attempt))
        .collect();
    for delivery in &unsent {
        if let Some(left) = outstanding.get_mut(&delivery.send_batch) {
            *left = left.saturating_sub(1);
        }
    }
    let completed: Vec<uuid::Uuid> = outstanding
        .iter()
        .filter(|(_, left)| **left == 0)
        .map(|(batch, _)| *batch)
        .collect();
    match deliveries::release_unsent(database, session, &claims, &completed, Duration::ZERO).await {
        Ok(released) => tracing::info!(released, "unsent deliveries returned to the queue"),
        Err(error) => {
            tracing::warn!(%error, "returning unsent deliveries failed; they will be taken over after the lease")
        }
    }
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    database: bool,
    /// The worker starts no provider call: its heartbeat could not be renewed.
    session_fenced: bool,
    assigned_partitions: usize,
    /// Partitions held per consumed topic (each topic is balanced over the workers on its own).
    assigned_partitions_by_topic: std::collections::BTreeMap<String, usize>,
    /// Each provider's circuit breaker (closed, open, half_open). Shown, never a reason to be
    /// unready: one provider's outage must not take the worker out, other channels keep going.
    circuits: std::collections::BTreeMap<&'static str, &'static str>,
}

async fn readyz(state: web::Data<(Arc<WorkerContext>, Arc<ConsumerStatus>)>) -> HttpResponse {
    let (context, status) = state.get_ref();
    let database = tokio::time::timeout(
        Duration::from_secs(2),
        context.database.connection().execute_unprepared("SELECT 1"),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    let readiness = Readiness {
        database,
        session_fenced: context.session.is_fenced(),
        assigned_partitions: status.assigned.load(Ordering::Relaxed),
        assigned_partitions_by_topic: status
            .assigned_by_topic
            .lock()
            .map(|by_topic| by_topic.clone())
            .unwrap_or_default(),
        circuits: context
            .lanes
            .iter()
            .map(|lane| (lane.provider().as_str(), lane.circuit_state().as_str()))
            .collect(),
        ready: false,
    };
    let ready = readiness.database && !readiness.session_fenced;
    let readiness = Readiness { ready, ..readiness };
    if ready {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}
