//! Metrics of the storage layer, in the process's one registry.

use herald_telemetry::metrics::REGISTRY;
use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry, HistogramVec,
    IntCounterVec,
};

pub static STATEMENT_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec_with_registry!(
        "herald_db_statement_duration_seconds",
        "PostgreSQL calls (a statement or a transaction) by operation.",
        &["operation"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        REGISTRY
    )
    .expect("registering herald_db_statement_duration_seconds")
});

pub static STATEMENT_DEADLINES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_db_deadline_exceeded_total",
        "PostgreSQL calls abandoned at the client-side deadline, by operation.",
        &["operation"],
        REGISTRY
    )
    .expect("registering herald_db_deadline_exceeded_total")
});

pub fn register_all() {
    Lazy::force(&STATEMENT_SECONDS);
    Lazy::force(&STATEMENT_DEADLINES);
}
