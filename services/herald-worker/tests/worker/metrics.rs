//! Every metric a process defines is on its `/metrics` from the start, before its first use: a
//! dashboard panel or an alert on it can be evaluated on a fresh process. Both binaries are started
//! as processes and scraped before any traffic.

use std::collections::BTreeSet;

use crate::helpers::*;

/// The metrics files whose metrics each process exposes.
pub const SHARED_SOURCES: &[&str] = &[
    "herald-telemetry/src/metrics.rs",
    "herald-store/src/metrics.rs",
    "herald-kafka/src/metrics.rs",
];
pub const API_SOURCE: &str = "herald-api/src/metrics.rs";
pub const WORKER_SOURCES: &[&str] = &[
    "herald-worker/src/metrics.rs",
    "herald-worker/src/status_events/metrics.rs",
];

/// The families an operator needs (the operability issue's list), whatever the source says.
const API_REQUIRED: &[&str] = &[
    "herald_http_requests_total",
    "herald_http_request_duration_seconds",
    "herald_notifications_accepted_total",
    "herald_ingest_rejected_total",
    "herald_ingest_commit_batch_rows",
    "herald_ingest_commit_duration_seconds",
    "herald_outbox_backlog",
    "herald_outbox_oldest_age_seconds",
    "herald_kafka_producer_queue_messages",
    "herald_kafka_produce_errors_total",
    "herald_cache_lookups_total",
    "herald_db_statement_duration_seconds",
    "herald_build_info",
    "process_resident_memory_bytes",
    "process_open_fds",
];
const WORKER_REQUIRED: &[&str] = &[
    "herald_consumer_lag",
    "herald_worker_batch_duration_seconds",
    "herald_deliveries_total",
    "herald_provider_request_duration_seconds",
    "herald_dead_letters_total",
    "herald_worker_parked_records_total",
    "herald_rate_limit_wait_seconds",
    "herald_cache_lookups_total",
    "herald_db_statement_duration_seconds",
    "herald_kafka_consumed_records_total",
    "herald_lane_max_held",
    "herald_build_info",
    "process_cpu_seconds_total",
];

/// The metric names defined in a source file: every `"herald_..."` string literal.
pub fn names_defined_in(relative_path: &str) -> BTreeSet<String> {
    let path = format!("{}/../{relative_path}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("reading {path}"));
    let names: BTreeSet<String> = source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| {
            literal.starts_with("herald_")
                && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty(), "no metric found in {path}");
    names
}

/// The families listed with at least one sample in an exposition.
fn exposed_families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(|series| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| series.strip_suffix(suffix))
                .unwrap_or(series)
                .to_owned()
        })
        .collect()
}

fn assert_all_exposed(process: &str, exposition: &str, sources: &[&str], required: &[&str]) {
    let exposed = exposed_families(exposition);
    let mut expected: BTreeSet<String> = sources
        .iter()
        .flat_map(|source| names_defined_in(source))
        .collect();
    expected.extend(required.iter().map(|name| name.to_string()));
    let missing: Vec<&String> = expected
        .iter()
        .filter(|name| !exposed.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{process} defines these metrics but its /metrics does not list them before their first use: {missing:?}"
    );
}

async fn scrape(url: &str) -> String {
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(url).await {
            if response.status().is_success() {
                return response.text().await.unwrap();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no metrics at {url}");
}

#[tokio::test]
async fn every_defined_metric_is_exposed_by_a_fresh_process() {
    let stack = prepare_stack(None, None, |_| {}).await;
    let api_port = free_port();
    let api_metrics_port = free_port();
    let _api = api_process_with(
        &stack.settings,
        api_port,
        &[("HERALD_SERVER__METRICS_PORT", api_metrics_port.to_string())],
    );
    let worker_port = free_port();
    let _worker = worker_process(&stack.settings, worker_port);

    let api = scrape(&format!("http://127.0.0.1:{api_metrics_port}/metrics")).await;
    let mut api_sources = SHARED_SOURCES.to_vec();
    api_sources.push(API_SOURCE);
    assert_all_exposed("herald-api", &api, &api_sources, API_REQUIRED);

    // Lag is per assigned partition: it exists once the group has given the worker partitions and
    // librdkafka has reported its statistics (every second).
    wait_until_ready(worker_port).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let worker = scrape(&format!("http://127.0.0.1:{worker_port}/metrics")).await;
    let mut worker_sources = SHARED_SOURCES.to_vec();
    worker_sources.extend_from_slice(WORKER_SOURCES);
    assert_all_exposed("herald-worker", &worker, &worker_sources, WORKER_REQUIRED);
}
