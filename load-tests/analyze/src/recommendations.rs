//! What to do about the findings, in three tiers (immediate, short-term, long-term), each action
//! naming the Herald settings it changes and the effect to expect; and cache TTLs from the cache
//! lookups scraped during the run.

use std::collections::BTreeMap;

use crate::cache_metrics::CacheLookups;
use crate::findings::{Finding, FindingKind};
use crate::results::{RunResults, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Settings: minutes to apply, no code.
    Immediate,
    /// Capacity: replicas, partitions, pools.
    ShortTerm,
    /// Architecture and infrastructure.
    LongTerm,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Immediate, Tier::ShortTerm, Tier::LongTerm];

    pub fn title(self) -> &'static str {
        match self {
            Tier::Immediate => "Immediate (settings)",
            Tier::ShortTerm => "Short-term (capacity)",
            Tier::LongTerm => "Long-term (infrastructure)",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub tier: Tier,
    pub action: &'static str,
    pub settings: &'static [&'static str],
    pub expected_effect: &'static str,
    /// The endpoints whose findings call for it.
    pub endpoints: Vec<String>,
}

/// What kind of traffic an endpoint carries, for the advice that fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    Ingest,
    Read,
    Delivery,
}

fn traffic(run: &RunResults, endpoint: &str) -> Traffic {
    if run
        .endpoint(endpoint)
        .is_some_and(|found| found.stage == Stage::Delivery)
    {
        return Traffic::Delivery;
    }
    let name = endpoint.to_ascii_lowercase();
    let reads = ["get", "list", "export", "read", "status"];
    if name.starts_with("get ")
        || reads
            .iter()
            .any(|read| name.rsplit(['.', ' ', '/']).next() == Some(read))
    {
        Traffic::Read
    } else {
        Traffic::Ingest
    }
}

type Advice = (Tier, &'static str, &'static [&'static str], &'static str);

const INGEST_LATENCY: &[Advice] = &[
    (Tier::Immediate, "Shorten the group commit's wait and let more commits run at once",
     &["ingest.linger_ms", "database.max_connections"],
     "P50 falls by up to the linger; P95/P99 by the time requests queue for a commit connection"),
    (Tier::ShortTerm, "Add API replicas (each group-commits on its own pool)",
     &["api.replicas (Helm)", "database.max_connections"],
     "throughput grows with replicas until PostgreSQL's write capacity (make bench, capacity scenario)"),
    (Tier::LongTerm, "Give PostgreSQL more cores and faster WAL storage (commits stay synchronous: a 2xx means stored)",
     &[], "the commit time, which is the floor under every write's latency"),
];
const INGEST_ERRORS: &[Advice] = &[
    (Tier::Immediate, "Read the refusals by code: 503 outbox_full (the broker is behind), 503 overloaded (bytes in flight), 429 (a tenant's limit)",
     &["outbox.max_unpublished", "ingest.max_bytes_in_flight", "herald-api set-ingest-limit"],
     "errors under 1% once the bound that refuses is sized to the offered load"),
    (Tier::ShortTerm, "Add API replicas and Kafka partitions so the outbox drains as fast as it fills",
     &["api.replicas (Helm)", "kafka.partitions"], "fewer 503s under the same load"),
];
const READ_ERRORS: &[Advice] = &[
    (Tier::Immediate, "Reads refused with 429 are one tenant over its share of read permits, with 503 the replica over all of them: size both to the reads the tenants make at once",
     &["server.max_concurrent_reads_per_tenant", "server.max_concurrent_reads", "database.max_connections"],
     "read errors under 1%; each permit holds a connection, so the pool must grow with them"),
    (Tier::ShortTerm, "Add API replicas: each brings its own read permits and connections",
     &["api.replicas (Helm)"], "read throughput grows with replicas"),
];
const READ_LATENCY: &[Advice] = &[
    (Tier::Immediate, "Let more reads hold a connection at once (below the pool, which commits share)",
     &["server.max_concurrent_reads", "server.max_concurrent_reads_per_tenant", "database.max_connections"],
     "reads stop queueing for a permit; their P95 approaches the query time"),
    (Tier::ShortTerm, "Add API replicas: each brings its own read permits and connections",
     &["api.replicas (Helm)"], "read throughput grows with replicas"),
    (Tier::LongTerm, "Check the list and status queries' plans (EXPLAIN ANALYZE) against the (tenant_id, status, id) index",
     &[], "a read costs one index range scan"),
];
const DELIVERY_LATENCY: &[Advice] = &[
    (Tier::Immediate, "Raise the slow lane's concurrency (its provider's latency × its rate is what it needs in flight)",
     &["providers.<id>.max_in_flight", "providers.<id>.max_held", "worker.content_cache_bytes"],
     "accept-to-delivery falls to the provider's own latency when the lane was full"),
    (Tier::ShortTerm, "Add partitions and worker replicas (one worker per partition at most)",
     &["kafka.partitions", "worker.replicas (Helm, or KEDA's maximum)"], "deliveries/s grows with workers until the providers' rate limits"),
    (Tier::LongTerm, "Raise the provider account's rate limit, or add a failover provider for the channel",
     &["providers.<id>.requests_per_second"], "the provider's limit stops being the ceiling"),
];
const VARIANCE: &[Advice] = &[
    (Tier::Immediate, "Compare with the same-run bare handler: maxima it shows too are the machine or the generator pausing, not Herald",
     &[], "tells a stall in Herald from a stall around it"),
    (Tier::ShortTerm, "Bound the slowest statements and find them by operation (herald_db_statement_duration_seconds)",
     &["database.query_timeout_ms"], "the worst request is bounded by the statement deadline"),
];
const THROUGHPUT: &[Advice] = &[
    (Tier::ShortTerm, "Scale out the component that is saturated: API replicas for requests, partitions and workers for deliveries",
     &["api.replicas (Helm)", "kafka.partitions", "worker.replicas (Helm)"], "throughput in proportion to replicas while PostgreSQL has headroom"),
];

/// The actions the findings call for, by tier, each once with every endpoint that calls for it.
pub fn plan(run: &RunResults, findings: &[Finding]) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    for finding in findings {
        let advice = match (finding.kind, traffic(run, &finding.endpoint)) {
            (FindingKind::Latency(_), Traffic::Ingest) => INGEST_LATENCY,
            (FindingKind::Latency(_), Traffic::Read) => READ_LATENCY,
            (FindingKind::Latency(_), Traffic::Delivery) => DELIVERY_LATENCY,
            (FindingKind::ErrorRate, Traffic::Read) => READ_ERRORS,
            (FindingKind::ErrorRate, _) => INGEST_ERRORS,
            (FindingKind::Throughput, _) => THROUGHPUT,
            (FindingKind::Variance, _) => VARIANCE,
        };
        for (tier, action, settings, expected_effect) in advice {
            match actions.iter_mut().find(|known| known.action == *action) {
                Some(known) => {
                    if !known.endpoints.contains(&finding.endpoint) {
                        known.endpoints.push(finding.endpoint.clone());
                    }
                }
                None => actions.push(Action {
                    tier: *tier,
                    action,
                    settings,
                    expected_effect,
                    endpoints: vec![finding.endpoint.clone()],
                }),
            }
        }
    }
    actions.sort_by_key(|action| action.tier);
    actions
}

/// A cache's figures and what to set, if anything.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheAdvice {
    pub kind: String,
    pub lookups: CacheLookups,
    pub lookups_per_second: Option<f64>,
    pub setting: Option<&'static str>,
    pub recommended: Option<u64>,
    pub reason: String,
}

/// The caches whose entries live for `cache.ttl_seconds` (the tag cache).
const TAG_CACHE_KINDS: [&str; 3] = ["recipient", "template_reference", "group_reference"];
/// Below this hit rate a cache is worth tuning.
const GOOD_HIT_RATE: f64 = 0.9;
/// Redis failing more lookups than this is the problem to fix first.
const MAX_ERROR_SHARE: f64 = 0.01;

/// The TTL traffic of `lookups_per_second` deserves: busy entries are read again soon, and the
/// longer they live the more of those reads they answer. Tiers after the load-test guide this
/// product was specified from (5 minutes for high traffic, down to 30 s for very low), one step
/// longer since every read checks its stamps (a longer TTL never serves a changed value).
pub fn ttl_for_traffic(lookups_per_second: f64) -> u64 {
    match lookups_per_second {
        rate if rate >= 100.0 => 600,
        rate if rate >= 10.0 => 300,
        rate if rate >= 1.0 => 120,
        _ => 60,
    }
}

/// Advice per cache kind, given the run's length and the TTL it ran with.
pub fn cache_advice(
    kinds: &BTreeMap<String, CacheLookups>,
    run_seconds: Option<f64>,
    current_ttl_seconds: u64,
) -> Vec<CacheAdvice> {
    kinds
        .iter()
        .filter(|(_, lookups)| lookups.total() > 0.0)
        .map(|(kind, lookups)| {
            let lookups_per_second = run_seconds
                .filter(|seconds| *seconds > 0.0)
                .map(|seconds| lookups.total() / seconds);
            let hit_rate = lookups.hit_rate().unwrap_or(0.0);
            let mut advice = CacheAdvice {
                kind: kind.clone(),
                lookups: *lookups,
                lookups_per_second,
                setting: None,
                recommended: None,
                reason: String::new(),
            };
            if lookups.errors / lookups.total() > MAX_ERROR_SHARE {
                advice.reason = format!(
                    "{:.1}% of lookups found Redis unreachable or slower than redis.timeout_ms: fix that before any TTL",
                    lookups.errors / lookups.total() * 100.0
                );
                return advice;
            }
            if kind == "api_key" {
                advice.reason = "a miss is a key the directory does not hold (unknown or just added): no TTL applies".into();
                return advice;
            }
            if kind == "content" {
                advice.reason = "a notification's content is read once per batch: hits are retries and redeliveries, so its hit rate is not a target".into();
                return advice;
            }
            if hit_rate >= GOOD_HIT_RATE {
                advice.reason = format!("hit rate {:.1}%: nothing to tune", hit_rate * 100.0);
                return advice;
            }
            if TAG_CACHE_KINDS.contains(&kind.as_str()) {
                if run_seconds.is_some_and(|seconds| seconds <= current_ttl_seconds as f64) {
                    advice.reason = format!(
                        "hit rate {:.1}%, but the run was shorter than cache.ttl_seconds ({current_ttl_seconds} s): no entry expired, its misses are first reads and invalidations, which no TTL avoids",
                        hit_rate * 100.0
                    );
                    return advice;
                }
                let Some(lookups_per_second) = lookups_per_second else {
                    advice.reason = format!(
                        "hit rate {:.1}%; the run's length is unknown (its results do not say), so expiries cannot be told from first reads",
                        hit_rate * 100.0
                    );
                    return advice;
                };
                let wanted = ttl_for_traffic(lookups_per_second);
                let rate = format!("{lookups_per_second:.1} lookups/s");
                if wanted <= current_ttl_seconds {
                    advice.reason = format!(
                        "hit rate {:.1}% under {rate}: cache.ttl_seconds ({current_ttl_seconds} s) is already what that traffic needs; misses are first reads and invalidations",
                        hit_rate * 100.0
                    );
                    return advice;
                }
                advice.setting = Some("cache.ttl_seconds");
                advice.recommended = Some(wanted);
                advice.reason = format!(
                    "hit rate {:.1}% under {rate}: entries expire before they are read again",
                    hit_rate * 100.0
                );
            } else {
                advice.setting = match kind.as_str() {
                    "template" => Some("templates.compiled_cache_entries"),
                    _ => None,
                };
                advice.reason = format!(
                    "hit rate {:.1}%: the cache is bounded, not timed; {}",
                    hit_rate * 100.0,
                    match advice.setting {
                        Some(setting) => format!("double {setting}"),
                        None => "its bound is fixed".to_owned(),
                    }
                );
            }
            advice
        })
        .collect()
}

/// The one `cache.ttl_seconds` the tag cache's kinds together call for, if any asks for a change.
pub fn recommended_ttl(advice: &[CacheAdvice]) -> Option<u64> {
    advice
        .iter()
        .filter(|advice| advice.setting == Some("cache.ttl_seconds"))
        .filter_map(|advice| advice.recommended)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Percentile, Severity};
    use crate::results::EndpointResult;

    #[test]
    fn each_finding_calls_for_the_settings_of_its_traffic_once_per_action() {
        let mut delivery = EndpointResult::new("delivery");
        delivery.stage = Stage::Delivery;
        let run = RunResults {
            endpoints: vec![
                EndpointResult::new("single"),
                EndpointResult::new("get"),
                delivery,
            ],
            ..RunResults::default()
        };
        let latency = |endpoint: &str| Finding {
            severity: Severity::Critical,
            endpoint: endpoint.into(),
            kind: FindingKind::Latency(Percentile::P99),
            figure: 900.0,
            target: 500.0,
        };
        let actions = plan(
            &run,
            &[
                latency("single"),
                latency("get"),
                latency("delivery"),
                latency("single"),
            ],
        );
        let settings_of = |endpoint: &str| -> Vec<&str> {
            actions
                .iter()
                .filter(|action| action.endpoints.iter().any(|name| name == endpoint))
                .flat_map(|action| action.settings.iter().copied())
                .collect()
        };
        assert!(settings_of("single").contains(&"ingest.linger_ms"));
        assert!(settings_of("get").contains(&"server.max_concurrent_reads"));
        assert!(settings_of("delivery").contains(&"providers.<id>.max_in_flight"));
        assert_eq!(
            actions
                .iter()
                .filter(|action| action.action.starts_with("Shorten"))
                .count(),
            1
        );
        assert!(actions.windows(2).all(|pair| pair[0].tier <= pair[1].tier));
    }

    #[test]
    fn ttls_follow_traffic_and_leave_a_good_or_failing_cache_alone() {
        let lookups = |hits: f64, misses: f64, errors: f64| CacheLookups {
            hits,
            misses,
            errors,
        };
        let kinds: BTreeMap<String, CacheLookups> = [
            ("template_reference".to_owned(), lookups(9_990.0, 10.0, 0.0)),
            ("recipient".to_owned(), lookups(60_000.0, 40_000.0, 0.0)),
            ("group_reference".to_owned(), lookups(50.0, 50.0, 20.0)),
            ("content".to_owned(), lookups(10.0, 90.0, 0.0)),
            ("template".to_owned(), lookups(10.0, 90.0, 0.0)),
        ]
        .into_iter()
        .collect();
        let advice = cache_advice(&kinds, Some(500.0), 300);
        let of = |kind: &str| advice.iter().find(|advice| advice.kind == kind).unwrap();
        assert_eq!(
            of("template_reference").recommended,
            None,
            "{}",
            of("template_reference").reason
        );
        assert_eq!(
            of("recipient").recommended,
            Some(600),
            "200 lookups/s over 500 s"
        );
        assert_eq!(
            of("group_reference").recommended,
            None,
            "{}",
            of("group_reference").reason
        );
        assert!(of("group_reference").reason.contains("Redis"));
        assert_eq!(of("content").setting, None, "{}", of("content").reason);
        assert_eq!(
            of("template").setting,
            Some("templates.compiled_cache_entries")
        );
        assert_eq!(recommended_ttl(&advice), Some(600));
        let short = cache_advice(&kinds, Some(60.0), 300);
        assert_eq!(
            recommended_ttl(&short),
            None,
            "no entry expired in a minute"
        );
        assert_eq!(
            recommended_ttl(&cache_advice(&kinds, None, 300)),
            None,
            "a run of unknown length"
        );
        assert_eq!(ttl_for_traffic(0.5), 60);
    }
}
