//! Prometheus metrics of the API, as statics registered in the process's one registry.

use herald_telemetry::metrics::REGISTRY;
use once_cell::sync::Lazy;
use prometheus::{
    register_gauge_with_registry, register_histogram_vec_with_registry,
    register_histogram_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, register_int_gauge_with_registry, Gauge, Histogram,
    HistogramVec, IntCounter, IntCounterVec, IntGauge,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Labels of the HTTP metrics, all from bounded sets: a method from a fixed list, the route
/// template (never the raw path), and the status class.
const HTTP_LABELS: &[&str] = &["method", "route", "status_class"];
/// The status classes declared at start-up for every route.
pub const STATUS_CLASSES: &[&str] = &["2xx", "4xx", "5xx"];

pub static HTTP_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_http_requests_total",
        "HTTP requests by method, route template and status class.",
        HTTP_LABELS,
        REGISTRY
    )
    .unwrap()
});

pub static HTTP_REQUEST_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "herald_http_request_duration_seconds",
        "HTTP request latency by method, route template and status class.",
        HTTP_LABELS,
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .unwrap()
});

/// `2xx`, `4xx`...: the status class label of the HTTP metrics.
pub fn status_class(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

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
        "Notifications or requests refused after validation, by reason (queue_full, outbox_full, \
         bytes_in_flight, client_bytes_in_flight, refused_by_database, unavailable, \
         idempotency_conflict).",
        &["reason"],
        REGISTRY
    )
    .unwrap()
});

pub static INGEST_BISECTIONS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_ingest_bisections_total",
        "Commit batches split in two because PostgreSQL refused them for a reason tied to rows.",
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
        "Time to write one group-commit batch to PostgreSQL (bisections included).",
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

pub static OUTBOX_BACKLOG: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_outbox_backlog",
        "Notifications committed but not yet acknowledged by the broker, all replicas (true count).",
        REGISTRY
    )
    .unwrap()
});

pub static OUTBOX_OLDEST_AGE_SECONDS: Lazy<Gauge> = Lazy::new(|| {
    register_gauge_with_registry!(
        "herald_outbox_oldest_age_seconds",
        "Age of the oldest outbox entry.",
        REGISTRY
    )
    .unwrap()
});

pub static OUTBOX_PARKED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_outbox_parked_total",
        "Records the broker refused for good, parked instead of published.",
        REGISTRY
    )
    .unwrap()
});

pub static OUTBOX_PARKED_WAITING: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_outbox_parked",
        "Parked records not replayed yet.",
        REGISTRY
    )
    .unwrap()
});

pub static SCHEDULED_RELEASED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_scheduled_released_total",
        "Scheduled notifications released into the outbox when due.",
        REGISTRY
    )
    .unwrap()
});

pub static RETENTION_BLOCKED_DAYS: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_retention_blocked_partitions",
        "Days past the retention not dropped because they hold unfinished notifications.",
        REGISTRY
    )
    .unwrap()
});

pub static BODY_READ_TIMEOUTS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_body_read_timeouts_total",
        "Requests answered 408 because their body did not arrive within server.body_read_timeout_ms.",
        REGISTRY
    )
    .unwrap()
});

pub static AUTH_THROTTLED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_auth_throttled_total",
        "Requests refused with 429 because their client sent too many unknown API keys.",
        REGISTRY
    )
    .unwrap()
});

/// The reasons of [`TENANT_RATE_LIMITED`]: the error codes of the refusals.
pub const TENANT_OVER_RATE: &str = "rate_limited";
pub const TENANT_OVER_QUOTA: &str = "quota_exceeded";

pub static TENANT_RATE_LIMITED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_tenant_rate_limited_total",
        "Ingest requests refused with 429 because of their tenant's ingest limits, by reason: \
         rate_limited (over its notifications per second, ingest.tenant_notifications_per_second \
         or its override) or quota_exceeded (over its notifications per UTC day, \
         ingest.tenant_notifications_per_day or its override).",
        &["reason"],
        REGISTRY
    )
    .unwrap()
});

pub static TENANT_RATE_LIMIT_FALLBACKS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter_with_registry!(
        "herald_tenant_rate_limit_fallbacks_total",
        "Tenant ingest limit decisions (rate and daily quota) made in process because Redis did not answer within 50 ms (each replica then counts alone).",
        REGISTRY
    )
    .unwrap()
});

pub static PROVIDER_REPORTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_provider_reports_total",
        "Delivery reports from signed provider callbacks, by provider (sendgrid, twilio), report \
         (delivered, bounced, failed) and outcome (applied: a sent delivery moved; deferred: kept \
         until the send is recorded; unchanged: unknown, final, or already reported).",
        &["provider", "report", "outcome"],
        REGISTRY
    )
    .unwrap()
});

pub static PROVIDER_EVENTS_IGNORED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_provider_events_ignored_total",
        "Events of signed provider callbacks that report no fate of a delivery (opens, clicks, \
         deferrals, intermediate statuses) or name no Herald delivery, by provider.",
        &["provider"],
        REGISTRY
    )
    .unwrap()
});

pub static PROVIDER_CALLBACKS_REFUSED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_provider_callbacks_refused_total",
        "Provider callbacks refused, by provider and reason (unsigned, bad_signature, stale, \
         not_configured: 401; malformed: 400).",
        &["provider", "reason"],
        REGISTRY
    )
    .unwrap()
});

pub static UNSUBSCRIBES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_unsubscribes_total",
        "One-click unsubscribe requests (POST /v1/unsubscribe/{token}), by result: opted_out (an \
         opt-out recorded), already (it was), unknown_user (the user was deleted), invalid (not a \
         link Herald signed, or links are off: 404).",
        &["result"],
        REGISTRY
    )
    .unwrap()
});

/// Registers every metric, so `/metrics` lists them before their first use.
pub fn register_all() {
    use herald_telemetry::metrics::{declare, PANICS_CAUGHT, TASK_RESTARTS};
    herald_telemetry::metrics::register_all();
    declare(
        &TASK_RESTARTS,
        &[
            &["relay"],
            &["scheduler"],
            &["maintenance"],
            &["key_revocations"],
        ],
    );
    declare(&PANICS_CAUGHT, &[&["group_commit"]]);
    declare(
        &UNSUBSCRIBES,
        &[
            &["opted_out"],
            &["already"],
            &["unknown_user"],
            &["invalid"],
        ],
    );
    declare(
        &INGEST_REJECTED,
        &[
            &["queue_full"],
            &["outbox_full"],
            &["bytes_in_flight"],
            &["client_bytes_in_flight"],
            &["refused_by_database"],
            &["unavailable"],
            &["idempotency_conflict"],
        ],
    );
    declare(
        &TENANT_RATE_LIMITED,
        &[&[TENANT_OVER_RATE], &[TENANT_OVER_QUOTA]],
    );
    declare(
        &KAFKA_PUBLISH,
        &[
            &["fast_path", "ok"],
            &["fast_path", "failed"],
            &["fast_path", "deferred_to_relay"],
            &["relay", "ok"],
            &["relay", "failed"],
        ],
    );
    herald_store::metrics::register_all();
    herald_store::metrics::declare_caches(&[herald_store::metrics::CacheKind::ApiKey]);
    herald_store::metrics::declare_tag_cache(&crate::references::REFERENCE_CACHE_KINDS);
    herald_kafka::metrics::register_all();
    herald_kafka::metrics::declare_producer(herald_kafka::ProducerRole::Api);
    herald_telemetry::metrics::set_build_info("api");
    Lazy::force(&NOTIFICATIONS_ACCEPTED);
    Lazy::force(&INGEST_REJECTED);
    Lazy::force(&INGEST_BISECTIONS);
    Lazy::force(&INGEST_BATCH_ROWS);
    Lazy::force(&INGEST_COMMIT_SECONDS);
    Lazy::force(&KAFKA_PUBLISH);
    Lazy::force(&RELAY_REPUBLISHED);
    Lazy::force(&OUTBOX_BACKLOG);
    Lazy::force(&OUTBOX_OLDEST_AGE_SECONDS);
    Lazy::force(&OUTBOX_PARKED);
    Lazy::force(&OUTBOX_PARKED_WAITING);
    Lazy::force(&SCHEDULED_RELEASED);
    Lazy::force(&BODY_READ_TIMEOUTS);
    Lazy::force(&RETENTION_BLOCKED_DAYS);
    Lazy::force(&AUTH_THROTTLED);
    Lazy::force(&TENANT_RATE_LIMIT_FALLBACKS);
    Lazy::force(&PROVIDER_REPORTS);
    Lazy::force(&PROVIDER_EVENTS_IGNORED);
    Lazy::force(&PROVIDER_CALLBACKS_REFUSED);
}
