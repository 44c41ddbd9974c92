//! Prometheus metrics of the worker, as statics registered in one registry.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec_with_registry, register_histogram_with_registry,
    register_int_counter_vec_with_registry, register_int_counter_with_registry, Histogram,
    HistogramVec, IntCounter, IntCounterVec, Registry,
};

pub static REGISTRY: Lazy<Registry> = Lazy::new(Registry::new);

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub static DELIVERIES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_deliveries_total",
        "Delivery attempts by channel and resulting status (sent, pending, failed, skipped).",
        &["channel", "status"],
        REGISTRY
    )
    .unwrap()
});

pub static PROVIDER_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_provider_requests_total",
        "Provider requests by provider and outcome.",
        &["provider", "outcome"],
        REGISTRY
    )
    .unwrap()
});

pub static PROVIDER_REQUEST_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "herald_provider_request_duration_seconds",
        "Provider request latency.",
        &["provider"],
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

pub static BATCH_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_worker_batch_duration_seconds",
        "Time to process one partition batch, from claim to offset commit.",
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

pub static ACCEPT_TO_SENT_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_accept_to_sent_seconds",
        "From the API's 202 to the provider's acceptance.",
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

pub static UNDECODABLE_RECORDS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_worker_undecodable_records_total",
        "Kafka records that are not notification envelopes (skipped).",
        REGISTRY
    )
    .unwrap()
});

pub static DEAD_LETTERS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_dead_letters_total",
        "Deliveries that failed for good and were produced to the dead-letter topic.",
        REGISTRY
    )
    .unwrap()
});

pub fn register_all() {
    Lazy::force(&DELIVERIES);
    Lazy::force(&PROVIDER_REQUESTS);
    Lazy::force(&PROVIDER_REQUEST_SECONDS);
    Lazy::force(&BATCH_SECONDS);
    Lazy::force(&ACCEPT_TO_SENT_SECONDS);
    Lazy::force(&UNDECODABLE_RECORDS);
    Lazy::force(&DEAD_LETTERS);
}
