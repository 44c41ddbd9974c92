//! Kafka client metrics every Herald process shares: what its producer holds, produced and failed
//! to produce, labelled by the producer's role (`api`, `worker`).

use herald_telemetry::metrics::{declare, REGISTRY};
use once_cell::sync::Lazy;
use prometheus::{
    register_int_counter_vec_with_registry, register_int_gauge_vec_with_registry, IntCounterVec,
    IntGaugeVec,
};

use crate::ProducerRole;

pub static PRODUCER_QUEUE: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec_with_registry!(
        "herald_kafka_producer_queue_messages",
        "Records in the producer's queue, not yet acknowledged by the broker (librdkafka msg_cnt).",
        &["client"],
        REGISTRY
    )
    .expect("registering herald_kafka_producer_queue_messages")
});

pub static PRODUCED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_kafka_produced_records_total",
        "Records the broker acknowledged.",
        &["client"],
        REGISTRY
    )
    .expect("registering herald_kafka_produced_records_total")
});

pub static PRODUCE_ERRORS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_kafka_produce_errors_total",
        "Records whose produce failed (refused, timed out, or not enqueued), retried or parked.",
        &["client"],
        REGISTRY
    )
    .expect("registering herald_kafka_produce_errors_total")
});

pub static PRODUCER_FAILED: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec_with_registry!(
        "herald_kafka_producer_failed",
        "1 once the producer hit a fatal error (it produces nothing more; the process is unhealthy until restarted).",
        &["client"],
        REGISTRY
    )
    .expect("registering herald_kafka_producer_failed")
});

pub fn register_all() {
    Lazy::force(&PRODUCER_QUEUE);
    Lazy::force(&PRODUCER_FAILED);
    Lazy::force(&PRODUCED);
    Lazy::force(&PRODUCE_ERRORS);
}

/// Shows a producer's series at zero from the start.
pub fn declare_producer(role: ProducerRole) {
    let client = role.as_label();
    let _ = PRODUCER_QUEUE.with_label_values(&[client]);
    let _ = PRODUCER_FAILED.with_label_values(&[client]);
    declare(&PRODUCED, &[&[client]]);
    declare(&PRODUCE_ERRORS, &[&[client]]);
}
