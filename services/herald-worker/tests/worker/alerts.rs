//! The alert rules name only metrics that Herald defines: a typo would make an alert that never
//! fires. (Offline and fast; `scripts/check-dashboards.sh` also runs every rule's selectors against a
//! Prometheus scraping a running Herald, and `metrics.rs` proves every defined metric is exposed.)

use std::collections::BTreeSet;

use crate::metrics::{names_defined_in, API_SOURCE, SHARED_SOURCES, WORKER_SOURCES};

/// Labels, not metrics, though they start like Herald's metrics: the kafka-exporter PodMonitor
/// (helm/herald/templates/kafka-exporter-podmonitor.yaml) names each consumer group's role with it.
const LABELS_HERALD_ADDS: [&str; 1] = ["herald_consumer"];

#[test]
fn every_metric_an_alert_names_is_defined() {
    let pod_monitor = std::fs::read_to_string(format!(
        "{}/../../helm/herald/templates/kafka-exporter-podmonitor.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for label in LABELS_HERALD_ADDS {
        assert!(
            pod_monitor.contains(label),
            "the kafka-exporter PodMonitor no longer adds `{label}`: drop it here"
        );
    }
    let defined: BTreeSet<String> = SHARED_SOURCES
        .iter()
        .chain(std::iter::once(&API_SOURCE))
        .chain(WORKER_SOURCES)
        .flat_map(|source| names_defined_in(source))
        .collect();
    let mut checked = 0;
    for file in ["herald-alerts.yml", "herald-recording-rules.yml"] {
        let path = format!("{}/../../ops/prometheus/{file}", env!("CARGO_MANIFEST_DIR"));
        let rules = std::fs::read_to_string(&path).unwrap();
        for token in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let Some(family) = token.strip_prefix("herald_").map(|_| token) else {
                continue;
            };
            if LABELS_HERALD_ADDS.contains(&family) {
                continue;
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| family.strip_suffix(suffix))
                .unwrap_or(family);
            assert!(
                defined.contains(family),
                "{file} names `{token}`, which no metrics.rs defines"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} metric names checked");
}
