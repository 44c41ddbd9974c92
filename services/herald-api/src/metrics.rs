//! Prometheus metrics of the API, as statics registered in one registry.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec_with_registry, register_histogram_with_registry,
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_with_registry, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Registry,
};

pub static REGISTRY: Lazy<Registry> = Lazy::new(Registry::new);

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub static HTTP_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "http_requests_total",
        "HTTP requests by method, route pattern and status.",
        &["method", "route", "status"],
        REGISTRY
    )
    .unwrap()
});

pub static HTTP_REQUEST_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "http_request_duration_seconds",
        "HTTP request latency by method and route pattern.",
        &["method", "route"],
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

pub static NOTIFICATIONS_ACCEPTED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_notifications_accepted_total",
        "Notifications committed to PostgreSQL (new, not idempotent repeats).",
        REGISTRY
    )
    .unwrap()
});

pub static INGEST_REJECTED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_ingest_rejected_total",
        "Submissions refused with 503, by reason (queue_full, outbox_full, commit_failed).",
        &["reason"],
        REGISTRY
    )
    .unwrap()
});

pub static INGEST_BATCH_ROWS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_ingest_commit_batch_rows",
        "Notifications per group-commit batch.",
        vec![1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0],
        REGISTRY
    )
    .unwrap()
});

pub static INGEST_COMMIT_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_ingest_commit_duration_seconds",
        "Time to write one group-commit batch to PostgreSQL.",
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

pub static KAFKA_PUBLISH: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_kafka_publish_batches_total",
        "Outbox batches published, by path (fast_path, relay) and outcome.",
        &["path", "outcome"],
        REGISTRY
    )
    .unwrap()
});

pub static RELAY_REPUBLISHED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_outbox_relay_notifications_total",
        "Notifications published by the outbox relay rather than the fast path.",
        REGISTRY
    )
    .unwrap()
});

pub static OUTBOX_UNPUBLISHED: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_outbox_unpublished",
        "Notifications committed but not yet acknowledged by the broker.",
        REGISTRY
    )
    .unwrap()
});

/// Registers every metric, so `/metrics` lists them before their first use.
pub fn register_all() {
    Lazy::force(&HTTP_REQUESTS);
    Lazy::force(&HTTP_REQUEST_SECONDS);
    Lazy::force(&NOTIFICATIONS_ACCEPTED);
    Lazy::force(&INGEST_REJECTED);
    Lazy::force(&INGEST_BATCH_ROWS);
    Lazy::force(&INGEST_COMMIT_SECONDS);
    Lazy::force(&KAFKA_PUBLISH);
    Lazy::force(&RELAY_REPUBLISHED);
    Lazy::force(&OUTBOX_UNPUBLISHED);
}
