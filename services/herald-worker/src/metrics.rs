//! Prometheus metrics of the worker, as statics registered in the process's one registry.

use herald_channels::SendOutcome;
use herald_domain::{DeliveryStatus, ProviderId};
use herald_store::metrics::CacheKind;
use herald_telemetry::metrics::{declare, REGISTRY};

use crate::circuit_breaker::CircuitState;
use once_cell::sync::Lazy;
use prometheus::{
    register_gauge_vec_with_registry, register_histogram_vec_with_registry,
    register_histogram_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, register_int_gauge_vec_with_registry,
    register_int_gauge_with_registry, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const LONG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

macro_rules! counter_vec {
    ($name:ident, $metric:literal, $help:literal, $labels:expr) => {
        pub static $name: Lazy<IntCounterVec> = Lazy::new(|| {
            register_int_counter_vec_with_registry!($metric, $help, $labels, REGISTRY)
                .expect(concat!("registering ", $metric))
        });
    };
}

macro_rules! counter {
    ($name:ident, $metric:literal, $help:literal) => {
        pub static $name: Lazy<IntCounter> = Lazy::new(|| {
            register_int_counter_with_registry!($metric, $help, REGISTRY)
                .expect(concat!("registering ", $metric))
        });
    };
}

macro_rules! gauge_vec {
    ($name:ident, $metric:literal, $help:literal, $labels:expr) => {
        pub static $name: Lazy<IntGaugeVec> = Lazy::new(|| {
            register_int_gauge_vec_with_registry!($metric, $help, $labels, REGISTRY)
                .expect(concat!("registering ", $metric))
        });
    };
}

macro_rules! gauge {
    ($name:ident, $metric:literal, $help:literal) => {
        pub static $name: Lazy<IntGauge> = Lazy::new(|| {
            register_int_gauge_with_registry!($metric, $help, REGISTRY)
                .expect(concat!("registering ", $metric))
        });
    };
}

counter_vec!(
    DELIVERIES,
    "herald_deliveries_total",
    "Deliveries by channel, provider and the status an attempt or admission gave them (sent, retrying, failed, skipped).",
    &["channel", "provider", "status"]
);
counter_vec!(
    PROVIDER_REQUESTS,
    "herald_provider_requests_total",
    "Provider requests by provider and outcome (sent, retryable_error, permanent_error).",
    &["provider", "outcome"]
);
pub static PROVIDER_REQUEST_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "herald_provider_request_duration_seconds",
        "Provider request latency.",
        &["provider"],
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .expect("registering herald_provider_request_duration_seconds")
});
pub static RATE_LIMIT_WAIT_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "herald_rate_limit_wait_seconds",
        "Time a send waited for its provider's rate limiter.",
        &["provider"],
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .expect("registering herald_rate_limit_wait_seconds")
});
pub static RATE_LIMIT_EFFECTIVE: Lazy<GaugeVec> = Lazy::new(|| {
    register_gauge_vec_with_registry!(
        "herald_provider_rate_limit_effective_per_second",
        "The provider's rate limit as this worker applies it: the rate all replicas share (the configured rate cut by 429s), or this worker's fallback share while Redis is unavailable.",
        &["provider"],
        REGISTRY
    )
    .expect("registering herald_provider_rate_limit_effective_per_second")
});
counter_vec!(
    RATE_LIMIT_FALLBACKS,
    "herald_provider_rate_limit_fallbacks_total",
    "Times a lane could not reach Redis for its shared rate limit and used its local fallback share for a second.",
    &["provider"]
);
counter_vec!(
    RATE_LIMITED,
    "herald_provider_rate_limited_total",
    "429 answers from the provider: each cuts the shared rate (at most once a second) and its Retry-After pauses every replica.",
    &["provider"]
);
gauge_vec!(
    LANE_HELD,
    "herald_lane_held_deliveries",
    "Deliveries a provider lane holds: waiting in memory, in flight, or sent with the outcome not yet recorded.",
    &["provider"]
);
gauge_vec!(
    LANE_MAX_HELD,
    "herald_lane_max_held",
    "Deliveries a provider lane can hold (its capacity): saturation is held / max_held.",
    &["provider"]
);
gauge_vec!(
    LANE_IN_FLIGHT,
    "herald_lane_in_flight_requests",
    "Provider requests in flight.",
    &["provider"]
);
gauge_vec!(
    QUEUE_DUE,
    "herald_delivery_queue_due",
    "Deliveries due now in PostgreSQL's delivery queue (overflow that did not fit a lane, and retries), by provider; counted up to 100,000. Every worker reports the same queue: aggregate with max.",
    &["provider"]
);
gauge_vec!(
    QUEUE_OLDEST_DUE_AGE,
    "herald_delivery_queue_oldest_due_age_seconds",
    "How long the oldest due delivery in the delivery queue has been due, by provider; 0 when none is due. Every worker reports the same queue: aggregate with max.",
    &["provider"]
);
counter_vec!(
    QUEUE_CLAIMED,
    "herald_delivery_queue_claimed_total",
    "Deliveries claimed from the delivery queue (overflow and retries), by provider.",
    &["provider"]
);
counter_vec!(
    DELIVERIES_GIVEN_UP_AFTER_TAKEOVERS,
    "herald_deliveries_given_up_after_takeovers_total",
    "Deliveries failed without another call because the workers sending them kept stopping before recording an outcome (pump::MAX_IN_DOUBT_TAKEOVERS), by provider.",
    &["provider"]
);
pub static BATCH_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_worker_batch_duration_seconds",
        "Time to admit one partition batch, from its records to its deliveries in PostgreSQL.",
        LATENCY_BUCKETS.to_vec(),
        REGISTRY
    )
    .expect("registering herald_worker_batch_duration_seconds")
});
counter_vec!(
    ADMITTED,
    "herald_deliveries_admitted_total",
    "Deliveries admitted from records, by how (sending, queued, skipped, cancelled, existing).",
    &["as"]
);
pub static ACCEPT_TO_SENT_SECONDS: Lazy<Histogram> = Lazy::new(|| {
    register_histogram_with_registry!(
        "herald_accept_to_sent_seconds",
        "From the API's 202 to the provider's acceptance.",
        LONG_BUCKETS.to_vec(),
        REGISTRY
    )
    .expect("registering herald_accept_to_sent_seconds")
});
counter_vec!(
    PARKED_RECORDS,
    "herald_worker_parked_records_total",
    "Kafka records parked instead of processed, by reason (undecodable, unknown_version, notification_missing, refused, panicked).",
    &["reason"]
);
gauge!(
    PARKED_WAITING,
    "herald_worker_parked_records",
    "Parked records not replayed yet."
);
counter!(
    DEAD_LETTERS,
    "herald_dead_letters_total",
    "Deliveries that failed for good and were produced to the dead-letter topic."
);
counter!(
    DEAD_LETTERS_UNPRODUCED,
    "herald_dead_letters_unproduced_total",
    "Dead letters that could not be produced (the failed delivery row remains the record)."
);
counter!(
    IN_DOUBT,
    "herald_deliveries_in_doubt_total",
    "Deliveries taken over from a dead worker session, to be sent again with the same reference."
);
counter!(
    RECORD_FAILURES,
    "herald_outcome_record_failures_total",
    "Failed attempts to write outcomes to PostgreSQL (the outcomes are kept and retried)."
);
gauge!(
    RECORD_PENDING,
    "herald_outcomes_pending",
    "Outcomes of provider calls not yet written to PostgreSQL."
);
gauge_vec!(
    CIRCUIT_STATE,
    "herald_provider_circuit_state",
    "1 for the state each provider's circuit breaker is in (closed, open, half_open), 0 for the others.",
    &["provider", "state"]
);
counter_vec!(
    DESTINATION_REFUSALS,
    "herald_destination_refusals_total",
    "Deliveries to a tenant's own destination (webhook, Slack or Discord URL) held back by that destination's bounds: circuit_open (failed without a call, retried later), in_flight_share (waited for one of its calls to end), held_share (left queued in PostgreSQL).",
    &["provider", "reason"]
);
counter_vec!(
    TENANT_SHARE_REFUSALS,
    "herald_lane_tenant_share_refusals_total",
    "Deliveries admission left queued in PostgreSQL because their tenant held its share of the provider's lane (worker.tenant_held_share); the pump claims them taking turns by tenant.",
    &["provider"]
);
gauge_vec!(
    DESTINATION_CIRCUITS_OPEN,
    "herald_destination_circuits_open",
    "Tenant destinations of each lane whose own circuit breaker is open or half-open (each destination has one; the provider's circuit is not used for them).",
    &["provider"]
);
gauge_vec!(
    DESTINATIONS_TRACKED,
    "herald_destinations_tracked",
    "Tenant destinations each lane tracks bounds for (at most 4096; idle ones are forgotten to make room).",
    &["provider"]
);
gauge!(
    CONTENT_CACHE_BYTES,
    "herald_worker_content_cache_bytes",
    "Notification content the worker caches, in bytes (bounded by worker.content_cache_bytes; entries live 10 minutes)."
);
gauge!(
    ASSIGNED_PARTITIONS,
    "herald_worker_assigned_partitions",
    "Partitions this worker holds."
);
gauge_vec!(
    CONSUMER_LAG,
    "herald_consumer_lag",
    "Records behind the high watermark, per assigned partition of each topic (the consumer's own watermarks).",
    &["topic", "partition"]
);
gauge!(
    SESSION_FENCED,
    "herald_worker_session_fenced",
    "1 while the worker starts no provider call because its heartbeat could not be renewed."
);
counter!(
    GROUP_RECORDS_PRODUCED,
    "herald_group_records_produced_total",
    "Records produced for group members by expansions (a page produced again after its owner died counts again)."
);
counter!(
    GROUP_MEMBERS_PLANNED,
    "herald_group_members_planned_total",
    "Group members that became recipients of a notification (each recipient once per notification)."
);
counter!(
    GROUP_EXPANSIONS_FINISHED,
    "herald_group_expansions_finished_total",
    "Group expansions done: every member as of acceptance planned and produced."
);
counter!(
    DEFERRED_BY_QUIET_HOURS,
    "herald_deliveries_deferred_by_quiet_hours_total",
    "Deliveries admitted within their recipient's quiet hours and queued until those end (docs/DESIGN.md, \"Preferences\"); opted-out ones are counted as skipped in herald_deliveries_total."
);
counter_vec!(
    ROUTING_DECISIONS,
    "herald_routing_decisions_total",
    "Notifications of tenants with routing rules, judged when their deliveries were admitted (docs/DESIGN.md, \"Routing rules\"), by result: matched (a rule chose their channels and perhaps their template) or unmatched (no rule held: sent as written). Counted per admission, so a redelivered record counts again.",
    &["result"]
);
counter_vec!(
    TEMPLATE_RENDER_FAILURES,
    "herald_template_render_failures_total",
    "Deliveries failed without a call because their template did not render: a missing variable, output over its bound, out of fuel, no part for the channel, or the version gone.",
    &["reason"]
);
counter!(
    GROUP_EXPANSION_FAILURES,
    "herald_group_expansion_failures_total",
    "Steps of a group expansion that failed (database or broker away) and were retried."
);
gauge!(
    GROUP_EXPANSIONS_RUNNING,
    "herald_group_expansions_running",
    "Group expansions this worker is running."
);
gauge!(
    GROUP_EXPANSIONS_WAITING,
    "herald_group_expansions_waiting",
    "Group expansions not finished, every worker's (waiting or running), as this worker last read them."
);
gauge!(
    GROUP_EXPANSION_OLDEST_AGE_SECONDS,
    "herald_group_expansion_oldest_age_seconds",
    "Age of the oldest unfinished group expansion, as this worker last read it."
);
counter!(
    SESSIONS_LOST,
    "herald_worker_sessions_lost_total",
    "Sessions given up because their heartbeat lapsed past the lease; their claims are someone else's."
);
counter_vec!(
    PARTITIONS_MOVED,
    "herald_worker_partitions_moved_total",
    "Partitions this worker gained (assigned) or gave up (revoked) in rebalances.",
    &["change"]
);
counter!(
    CONSUMED,
    "herald_kafka_consumed_records_total",
    "Records this worker took from its partitions (admitted, skipped or parked)."
);

pub fn register_all() {
    use herald_telemetry::metrics::{PANICS_CAUGHT, TASK_RESTARTS};
    herald_telemetry::metrics::register_all();
    declare(
        &TASK_RESTARTS,
        &[
            &["heartbeat"],
            &["queue_pump"],
            &["sweeper"],
            &["consumer"],
            &["cancellation_watch"],
            &["status_event_relay"],
            &["status_event_consumer"],
            &["webhook_dispatcher"],
            &["group_expander"],
        ],
    );
    declare(
        &PANICS_CAUGHT,
        &[
            &["admission"],
            &["provider_send"],
            &["record_outcomes"],
            &["group_expansion"],
        ],
    );
    declare(
        &PARKED_RECORDS,
        &[
            &["undecodable"],
            &["unknown_version"],
            &["notification_missing"],
            &["refused"],
            &["panicked"],
        ],
    );
    declare(&PARTITIONS_MOVED, &[&["assigned"], &["revoked"]]);
    declare(
        &ADMITTED,
        &[
            &["sending"],
            &["queued"],
            &["skipped"],
            &["cancelled"],
            &["existing"],
        ],
    );
    herald_store::metrics::register_all();
    Lazy::force(&DELIVERIES);
    Lazy::force(&PROVIDER_REQUESTS);
    Lazy::force(&PROVIDER_REQUEST_SECONDS);
    Lazy::force(&RATE_LIMIT_WAIT_SECONDS);
    Lazy::force(&RATE_LIMIT_EFFECTIVE);
    Lazy::force(&RATE_LIMIT_FALLBACKS);
    Lazy::force(&RATE_LIMITED);
    Lazy::force(&LANE_HELD);
    Lazy::force(&LANE_MAX_HELD);
    Lazy::force(&LANE_IN_FLIGHT);
    Lazy::force(&QUEUE_CLAIMED);
    Lazy::force(&DELIVERIES_GIVEN_UP_AFTER_TAKEOVERS);
    Lazy::force(&BATCH_SECONDS);
    Lazy::force(&ADMITTED);
    Lazy::force(&ACCEPT_TO_SENT_SECONDS);
    Lazy::force(&PARKED_RECORDS);
    Lazy::force(&PARKED_WAITING);
    Lazy::force(&QUEUE_DUE);
    Lazy::force(&QUEUE_OLDEST_DUE_AGE);
    Lazy::force(&DEAD_LETTERS);
    Lazy::force(&DEAD_LETTERS_UNPRODUCED);
    Lazy::force(&IN_DOUBT);
    Lazy::force(&RECORD_FAILURES);
    Lazy::force(&RECORD_PENDING);
    Lazy::force(&ASSIGNED_PARTITIONS);
    Lazy::force(&CIRCUIT_STATE);
    Lazy::force(&CONTENT_CACHE_BYTES);
    Lazy::force(&CONSUMER_LAG);
    Lazy::force(&SESSION_FENCED);
    Lazy::force(&SESSIONS_LOST);
    Lazy::force(&GROUP_RECORDS_PRODUCED);
    Lazy::force(&GROUP_MEMBERS_PLANNED);
    Lazy::force(&GROUP_EXPANSIONS_FINISHED);
    Lazy::force(&GROUP_EXPANSION_FAILURES);
    Lazy::force(&DEFERRED_BY_QUIET_HOURS);
    for result in ["matched", "unmatched"] {
        ROUTING_DECISIONS.with_label_values(&[result]);
    }
    for reason in [
        "missing_variable",
        "too_large",
        "out_of_fuel",
        "no_part",
        "failed",
        "unavailable",
    ] {
        TEMPLATE_RENDER_FAILURES.with_label_values(&[reason]);
    }
    Lazy::force(&GROUP_EXPANSIONS_RUNNING);
    Lazy::force(&GROUP_EXPANSIONS_WAITING);
    Lazy::force(&GROUP_EXPANSION_OLDEST_AGE_SECONDS);
    Lazy::force(&CONSUMED);
    herald_store::metrics::declare_tag_cache(&[CacheKind::Recipient]);
    herald_store::metrics::declare_caches(&[
        CacheKind::Content,
        CacheKind::Template,
        CacheKind::RoutingRules,
    ]);
    herald_kafka::metrics::register_all();
    herald_kafka::metrics::declare_producer(herald_kafka::ProducerRole::Worker);
    herald_telemetry::metrics::set_build_info("worker");
}

/// The statuses counted in `herald_deliveries_total`: the outcomes of provider calls (and of calls
/// given up without one). A delivery skipped for want of an address never reaches a lane: it is
/// counted by `herald_deliveries_admitted_total{as="skipped"}`.
const COUNTED_DELIVERY_STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Sent,
    DeliveryStatus::Retrying,
    DeliveryStatus::Failed,
];

/// Shows every series of one provider lane from the start, at zero, and its capacity.
/// Sets the one-hot circuit state gauge of `provider`.
pub fn publish_circuit_state(provider: ProviderId, state: CircuitState) {
    for candidate in CircuitState::ALL {
        CIRCUIT_STATE
            .with_label_values(&[provider.as_str(), candidate.as_str()])
            .set(i64::from(candidate == state));
    }
}

/// The destination series of a lane whose destinations the tenants choose.
pub fn declare_destinations(provider: ProviderId) {
    declare(
        &DESTINATION_REFUSALS,
        &[
            &[provider.as_str(), "circuit_open"],
            &[provider.as_str(), "in_flight_share"],
            &[provider.as_str(), "held_share"],
        ],
    );
    DESTINATION_CIRCUITS_OPEN
        .with_label_values(&[provider])
        .set(0);
    DESTINATIONS_TRACKED.with_label_values(&[provider]).set(0);
}

pub fn declare_lane(provider: ProviderId, max_held: usize) {
    publish_circuit_state(provider, CircuitState::Closed);
    LANE_MAX_HELD
        .with_label_values(&[provider])
        .set(max_held as i64);
    LANE_HELD.with_label_values(&[provider]).set(0);
    LANE_IN_FLIGHT.with_label_values(&[provider]).set(0);
    let _ = RATE_LIMIT_WAIT_SECONDS.with_label_values(&[provider]);
    for counter in [
        &RATE_LIMIT_FALLBACKS,
        &RATE_LIMITED,
        &QUEUE_CLAIMED,
        &TENANT_SHARE_REFUSALS,
        &DELIVERIES_GIVEN_UP_AFTER_TAKEOVERS,
    ] {
        declare(counter, &[&[provider.as_str()]]);
    }
    declare_provider(provider);
}

/// The series of a provider's calls and deliveries: every lane's provider, and a failover
/// provider that calls within another's lane.
pub fn declare_provider(provider: ProviderId) {
    let _ = PROVIDER_REQUEST_SECONDS.with_label_values(&[provider]);
    for outcome in SendOutcome::LABELS {
        declare(&PROVIDER_REQUESTS, &[&[provider.as_str(), outcome]]);
    }
    for status in COUNTED_DELIVERY_STATUSES {
        declare(
            &DELIVERIES,
            &[&[
                provider.channel().as_str(),
                provider.as_str(),
                status.as_str(),
            ]],
        );
    }
}
