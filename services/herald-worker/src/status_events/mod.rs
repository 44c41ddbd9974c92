//! Delivery status events and webhook subscriptions (docs/DESIGN.md, "Status events and webhook
//! subscriptions"), three supervised tasks of the worker:
//!
//! * the relay (`relay.rs`): `status_events` outbox → the events topic;
//! * the events consumer (`consumer.rs`, its own consumer group): topic → one durable send per
//!   (event, matching subscription) in `webhook_event_sends`;
//! * the dispatcher (`dispatcher.rs`): due sends → the subscribers' endpoints, signed, retried.

pub mod consumer;
pub mod dispatcher;
pub mod metrics;
pub mod relay;
pub mod subscription_cache;

use std::sync::Arc;
use std::time::Duration;

use herald_channels::outbound;
use herald_config::Settings;
use herald_kafka::HeraldProducer;
use herald_store::Database;
use herald_telemetry::supervise::supervise;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::RetryPolicy;
use dispatcher::DispatcherSettings;
use relay::RelaySettings;
use subscription_cache::SubscriptionCache;

const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// What the three tasks need, built with the worker.
pub struct StatusEvents {
    settings: Settings,
    database: Database,
    producer: HeraldProducer,
    client: reqwest::Client,
}

impl StatusEvents {
    pub fn build(settings: &Settings, database: Database) -> anyhow::Result<StatusEvents> {
        metrics::register();
        Ok(StatusEvents {
            settings: settings.clone(),
            database,
            // The same producer set-up as every Herald producer (durability, metrics).
            producer: herald_kafka::create_producer(
                &settings.kafka,
                "herald-worker-status-events",
                herald_kafka::ProducerRole::Worker,
            )?,
            // Subscribers' URLs are tenants' URLs: the SSRF-guarded client, like the webhook channel.
            client: outbound::guarded_client(settings.outbound.allow_private_networks, USER_AGENT),
        })
    }

    /// Starts the relay, the events consumer and the dispatcher on `tasks`, until `stop`.
    pub fn spawn(self, tasks: &TaskTracker, stop: &CancellationToken) {
        let events = &self.settings.status_events;
        let relay_settings = Arc::new(RelaySettings {
            topic: events.topic.clone(),
            interval: Duration::from_millis(events.relay_interval_ms),
            batch_limit: events.relay_batch_limit,
            lease: Duration::from_millis(events.relay_lease_ms),
        });
        {
            let (database, producer, stop) =
                (self.database.clone(), self.producer.clone(), stop.clone());
            tasks.spawn(supervise("status_event_relay", move || {
                relay::run_relay(
                    database.clone(),
                    producer.clone(),
                    relay_settings.clone(),
                    stop.clone(),
                )
            }));
        }
        {
            let subscriptions = SubscriptionCache::new(
                self.database.clone(),
                Duration::from_millis(events.subscription_cache_ttl_ms),
                events.subscription_cache_tenants,
            );
            let (settings, database, stop) =
                (self.settings.clone(), self.database.clone(), stop.clone());
            tasks.spawn(supervise("status_event_consumer", move || {
                consumer::run_events_consumer(
                    settings.clone(),
                    database.clone(),
                    subscriptions.clone(),
                    stop.clone(),
                )
            }));
        }
        let dispatcher_settings = Arc::new(DispatcherSettings {
            max_in_flight: events.max_in_flight,
            max_in_flight_per_subscription: events.max_in_flight_per_subscription,
            max_in_flight_per_tenant: events.max_in_flight_per_tenant,
            timeout: Duration::from_millis(events.timeout_ms),
            retry_policy: RetryPolicy {
                max_attempts: events.max_attempts,
                base: Duration::from_millis(events.retry_base_ms),
                max: Duration::from_millis(events.retry_max_ms),
            },
            interval: Duration::from_millis(events.dispatch_interval_ms),
            allow_private_networks: self.settings.outbound.allow_private_networks,
            // As long as notifications themselves are kept.
            keep_parked: Duration::from_secs(u64::from(self.settings.retention.days) * 86_400),
        });
        let (database, client, stop) = (self.database, self.client, stop.clone());
        tasks.spawn(supervise("webhook_dispatcher", move || {
            dispatcher::run_dispatcher(
                database.clone(),
                client.clone(),
                dispatcher_settings.clone(),
                stop.clone(),
            )
        }));
    }
}
