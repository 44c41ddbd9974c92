//! Metrics of the storage layer, in the process's one registry.

use herald_telemetry::metrics::REGISTRY;
use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry, HistogramVec,
    IntCounterVec,
};

/// What a cache lookup looked for: the `kind` label of `herald_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// The API's in-process cache of API keys.
    ApiKey,
    /// The worker's Redis cache of recipients.
    Recipient,
    /// The worker's in-process cache of notification content.
    Content,
    /// The worker's in-process cache of compiled template versions.
    Template,
    /// The worker's in-process cache of compiled routing rule versions.
    RoutingRules,
}

impl CacheKind {
    fn as_label(self) -> &'static str {
        match self {
            CacheKind::ApiKey => "api_key",
            CacheKind::Recipient => "recipient",
            CacheKind::Content => "content",
            CacheKind::Template => "template",
            CacheKind::RoutingRules => "routing_rules",
        }
    }
}

/// How a cache lookup went: the `result` label of `herald_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    /// The cache could not answer (Redis unavailable); the database answered instead.
    Error,
}

impl CacheResult {
    const ALL: [CacheResult; 3] = [CacheResult::Hit, CacheResult::Miss, CacheResult::Error];

    fn as_label(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Error => "error",
        }
    }
}

pub static CACHE_LOOKUPS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_cache_lookups_total",
        "Cache lookups by kind (api_key, recipient, content) and result (hit, miss, error).",
        &["kind", "result"],
        REGISTRY
    )
    .expect("registering herald_cache_lookups_total")
});

/// Counts `lookups` lookups of `kind` that ended in `result`.
pub fn count_cache_lookups(kind: CacheKind, result: CacheResult, lookups: u64) {
    CACHE_LOOKUPS
        .with_label_values(&[kind.as_label(), result.as_label()])
        .inc_by(lookups);
}

/// Shows the lookup series of the caches this process has, at zero, from the start.
pub fn declare_caches(kinds: &[CacheKind]) {
    for kind in kinds {
        for result in CacheResult::ALL {
            count_cache_lookups(*kind, result, 0);
        }
    }
}

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
    Lazy::force(&CACHE_LOOKUPS);
}
