//! Metrics of status events and webhook subscriptions, registered with the process's registry.

use herald_telemetry::metrics::REGISTRY;
use once_cell::sync::Lazy;
use prometheus::{
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_vec_with_registry, register_int_gauge_with_registry, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec,
};

use herald_channels::SendOutcome;

pub static EVENTS_PRODUCED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_status_events_produced_total",
        "Delivery status events the broker acknowledged on the events topic.",
        REGISTRY
    )
    .expect("registering herald_status_events_produced_total")
});

pub static EVENTS_BACKLOG: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_status_events_backlog",
        "Delivery status events committed in PostgreSQL and not yet acknowledged by the broker.",
        REGISTRY
    )
    .expect("registering herald_status_events_backlog")
});

pub static EVENTS_OLDEST_AGE: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_status_events_oldest_age_seconds",
        "Age of the oldest unpublished delivery status event.",
        REGISTRY
    )
    .expect("registering herald_status_events_oldest_age_seconds")
});

pub static EVENTS_UNDECODABLE: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_status_events_undecodable_total",
        "Records of the events topic that are not status events; skipped.",
        REGISTRY
    )
    .expect("registering herald_status_events_undecodable_total")
});

pub static CONSUMER_LAG: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec_with_registry!(
        "herald_status_events_consumer_lag",
        "Status events behind the high watermark, per partition of the events topic this worker's status-events consumer holds (its own watermarks; group status_events.subscriptions_group_id).",
        &["topic", "partition"],
        REGISTRY
    )
    .expect("registering herald_status_events_consumer_lag")
});

pub static SENDS_DROPPED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_webhook_subscription_events_dropped_total",
        "Events not stored for a subscription because its backlog was full (status_events.max_pending_per_subscription); each subscription's count is its dropped_events in GET /v1/webhooks.",
        REGISTRY
    )
    .expect("registering herald_webhook_subscription_events_dropped_total")
});

pub static SENDS_ENQUEUED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_webhook_subscription_sends_enqueued_total",
        "(event, subscription) pairs stored for sending.",
        REGISTRY
    )
    .expect("registering herald_webhook_subscription_sends_enqueued_total")
});

pub static SEND_ATTEMPTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_webhook_subscription_attempts_total",
        "Calls to subscribers' endpoints, by outcome (sent, retryable_error, permanent_error).",
        &["outcome"],
        REGISTRY
    )
    .expect("registering herald_webhook_subscription_attempts_total")
});

pub static SENDS_PARKED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_webhook_subscription_parked_total",
        "Events parked for a subscription: its last attempt failed, or it answered a permanent error.",
        REGISTRY
    )
    .expect("registering herald_webhook_subscription_parked_total")
});

/// Declares every series at zero, so dashboards and alerts see them from the start.
pub fn register() {
    Lazy::force(&EVENTS_PRODUCED);
    Lazy::force(&EVENTS_BACKLOG);
    Lazy::force(&EVENTS_OLDEST_AGE);
    Lazy::force(&EVENTS_UNDECODABLE);
    Lazy::force(&CONSUMER_LAG);
    Lazy::force(&SENDS_ENQUEUED);
    Lazy::force(&SENDS_DROPPED);
    Lazy::force(&SENDS_PARKED);
    for outcome in SendOutcome::LABELS {
        SEND_ATTEMPTS.with_label_values(&[outcome]);
    }
}
