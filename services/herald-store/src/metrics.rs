//! Metrics of the storage layer, in the process's one registry.

use herald_telemetry::metrics::REGISTRY;
use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry,
    register_int_gauge_with_registry, HistogramVec, IntCounterVec, IntGauge,
};

/// What a cache lookup looked for: the `kind` label of `herald_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// The API's in-process cache of API keys.
    ApiKey,
    /// The worker's tag cache of recipients (contacts and preferences).
    Recipient,
    /// The worker's in-process cache of notification content.
    Content,
    /// The worker's in-process cache of compiled template versions.
    Template,
    /// The worker's in-process cache of compiled routing rule versions.
    RoutingRules,
    /// The API's tag cache of template references (a template id, and version, to the version and
    /// its channels) read at acceptance.
    TemplateReference,
    /// The API's tag cache of group references (a group id to the group) read at acceptance.
    GroupReference,
}

impl CacheKind {
    pub(crate) fn as_label(self) -> &'static str {
        match self {
            CacheKind::ApiKey => "api_key",
            CacheKind::Recipient => "recipient",
            CacheKind::Content => "content",
            CacheKind::Template => "template",
            CacheKind::RoutingRules => "routing_rules",
            CacheKind::TemplateReference => "template_reference",
            CacheKind::GroupReference => "group_reference",
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
        "Cache lookups by kind (api_key, recipient, content, template, routing_rules, template_reference, group_reference) and result (hit, miss, error).",
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

pub static CACHE_LOCAL_HITS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_cache_local_hits_total",
        "Tag cache hits answered by the in-process layer (its stamps checked in Redis), by kind; the rest of the hits came from Redis.",
        &["kind"],
        REGISTRY
    )
    .expect("registering herald_cache_local_hits_total")
});

/// Counts one hit of `kind` answered in process.
pub fn count_local_hits(kind: CacheKind) {
    CACHE_LOCAL_HITS.with_label_values(&[kind.as_label()]).inc();
}

/// What became of a tag's invalidation: the `result` label of `herald_cache_invalidations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagInvalidation {
    /// A new stamp and its message reached Redis.
    Published,
    /// Redis could not be reached; retried in the background.
    Deferred,
    /// Too many were waiting for Redis; the tag's entries live until their TTL.
    Dropped,
}

impl TagInvalidation {
    const ALL: [TagInvalidation; 3] = [
        TagInvalidation::Published,
        TagInvalidation::Deferred,
        TagInvalidation::Dropped,
    ];

    fn as_label(self) -> &'static str {
        match self {
            TagInvalidation::Published => "published",
            TagInvalidation::Deferred => "deferred",
            TagInvalidation::Dropped => "dropped",
        }
    }
}

pub static TAG_INVALIDATIONS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_cache_invalidations_total",
        "Cache tags invalidated by writes, by result (published, deferred: Redis unreachable and retried, dropped: too many waiting).",
        &["result"],
        REGISTRY
    )
    .expect("registering herald_cache_invalidations_total")
});

pub fn count_tag_invalidations(result: TagInvalidation, tags: usize) {
    TAG_INVALIDATIONS
        .with_label_values(&[result.as_label()])
        .inc_by(tags as u64);
}

pub static TAG_INVALIDATIONS_PENDING: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_cache_invalidations_pending",
        "Cache tags whose invalidation waits for Redis; while above 0 this process reads from PostgreSQL.",
        REGISTRY
    )
    .expect("registering herald_cache_invalidations_pending")
});

pub static TAG_SUBSCRIPTION_UP: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge_with_registry!(
        "herald_cache_subscription_up",
        "1 while this process hears cache invalidations (and so keeps in-process entries), else 0.",
        REGISTRY
    )
    .expect("registering herald_cache_subscription_up")
});

/// Shows the tag cache's series of a process that has one, at zero, from the start.
pub fn declare_tag_cache(kinds: &[CacheKind]) {
    declare_caches(kinds);
    for kind in kinds {
        CACHE_LOCAL_HITS
            .with_label_values(&[kind.as_label()])
            .inc_by(0);
    }
    for result in TagInvalidation::ALL {
        count_tag_invalidations(result, 0);
    }
    Lazy::force(&TAG_INVALIDATIONS_PENDING);
    Lazy::force(&TAG_SUBSCRIPTION_UP);
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
