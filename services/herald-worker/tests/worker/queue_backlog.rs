//! The delivery queue's gauges, a scaling signal (helm chart: KEDA's prometheus trigger): a provider
//! that answers slowly fills its lane and the rest of its deliveries wait in PostgreSQL's
//! `delivery_queue`, which Kafka's lag does not show (the records are consumed at once). The gauges
//! say how many are due and how long the oldest has waited, and fall back once the queue drains.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const NOTIFICATIONS: usize = 40;

/// `herald_delivery_queue_due` and `herald_delivery_queue_oldest_due_age_seconds` of `provider`,
/// as the worker on `metrics_port` exposes them.
async fn queue_gauges(metrics_port: u16, provider: &str) -> (f64, f64) {
    let exposition = worker_metrics(metrics_port).await;
    let sample =
        |name: &str| metric_value(&exposition, &format!("{name}{{provider=\"{provider}\"}}"));
    (
        sample("herald_delivery_queue_due"),
        sample("herald_delivery_queue_oldest_due_age_seconds"),
    )
}

/// Waits up to `timeout` for the gauges of `provider` to satisfy `condition`; returns the last
/// reading either way.
async fn gauges_once(
    metrics_port: u16,
    provider: &str,
    timeout: Duration,
    condition: impl Fn(f64, f64) -> bool,
) -> (f64, f64) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (due, oldest_age) = queue_gauges(metrics_port, provider).await;
        if condition(due, oldest_age) || tokio::time::Instant::now() > deadline {
            return (due, oldest_age);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_slow_providers_backlog_in_the_delivery_queue_shows_in_its_gauges_and_drains() {
    let stack = start_stack_with(None, None, |settings| {
        // A lane of 2 calls and 4 held: the rest of the SMS overflow into delivery_queue.
        settings.providers.twilio.max_in_flight = 2;
        settings.providers.twilio.max_held = 4;
        settings.providers.twilio.timeout_ms = 10_000;
        settings.worker.lease_ms = 20_000;
    })
    .await;
    stack
        .configure_provider("twilio", json!({"latency_ms": 8_000}))
        .await;
    stack.insert_users(NOTIFICATIONS).await;
    let metrics_port = free_port();
    let _worker = worker_process(&stack.settings, metrics_port);
    wait_until_ready(metrics_port).await;

    stack
        .notify_batch(
            (0..NOTIFICATIONS)
                .map(|index| alert(&[&format!("user-{index}")], &["sms"]))
                .collect(),
        )
        .await;
    // 36 overflow; the lane takes 2 more every 8 s, and the gauges are read every 10 sweeps.
    let (due, oldest_age) = gauges_once(
        metrics_port,
        "twilio",
        Duration::from_secs(30),
        |due, age| due >= 18.0 && age >= 2.0,
    )
    .await;
    assert!(
        due >= 18.0 && oldest_age >= 2.0,
        "twilio's overflow waits in the queue: due {due} (about 36 expected), oldest waited {oldest_age}s"
    );
    let (other_due, _) = queue_gauges(metrics_port, "sendgrid").await;
    assert_eq!(other_due, 0.0, "another provider's queue is empty");

    // The provider answers again: the queue drains and the gauges fall back.
    stack
        .configure_provider("twilio", json!({"latency_ms": 0}))
        .await;
    let (due, oldest_age) = gauges_once(
        metrics_port,
        "twilio",
        Duration::from_secs(60),
        |due, age| due == 0.0 && age == 0.0,
    )
    .await;
    assert_eq!(
        (due, oldest_age),
        (0.0, 0.0),
        "the drained queue's gauges read zero"
    );
}
