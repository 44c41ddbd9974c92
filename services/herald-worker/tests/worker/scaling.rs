//! Scaling by partitions: an operator raises a topic's partitions (`create-topics` with a higher
//! `kafka.partitions`, as the chart's KafkaTopic would) while the workers run. The API produces to
//! the new partitions and the workers consume them, without a restart, once their metadata is
//! refreshed (`kafka.metadata_refresh_ms`).

use std::time::Duration;

use crate::helpers::*;

async fn assigned_to_all(metrics_ports: &[u16]) -> u64 {
    let mut total = 0;
    for port in metrics_ports {
        total += assigned_partitions(*port).await;
    }
    total
}

/// Whether the workers on `metrics_ports` come to hold `partitions` partitions between them
/// within a minute.
async fn held_within_a_minute(metrics_ports: &[u16], partitions: u64) -> bool {
    for _ in 0..600 {
        if assigned_to_all(metrics_ports).await == partitions {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn partitions_added_while_the_workers_run_are_produced_to_and_consumed_without_a_restart() {
    let stack = start_stack_with(None, None, |settings| {
        settings.kafka.metadata_refresh_ms = 1000;
    })
    .await;
    let before = stack.settings.kafka.partitions;
    let after = before * 2;
    let metrics_ports = [free_port(), free_port()];
    let _workers: Vec<_> = metrics_ports
        .iter()
        .map(|port| worker_process(&stack.settings, *port))
        .collect();
    // Both topics the workers read (normal and high priority) have `before` partitions each.
    assert!(
        held_within_a_minute(&metrics_ports, 2 * before as u64).await,
        "the workers share the partitions"
    );

    let mut raised = stack.settings.clone();
    raised.kafka.partitions = after;
    herald_api::cli::create_topics(&raised).await.unwrap();
    assert!(
        held_within_a_minute(&metrics_ports, 2 * after as u64).await,
        "the running workers hold the new partitions too: {} of {}",
        assigned_to_all(&metrics_ports).await,
        2 * after
    );
    // The API's producer refreshes its metadata as often as the workers.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let recipients = 200;
    stack.insert_users(recipients).await;
    let id = stack
        .notify(alert_to_first_users(recipients, &["sms"]))
        .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let records = herald_testing::consume_raw(
        &stack.settings.kafka.brokers,
        &stack.settings.kafka.topic,
        recipients,
        Duration::from_secs(30),
    )
    .await;
    let on_new_partitions = records
        .iter()
        .filter(|record| record.partition >= before)
        .count();
    assert!(
        on_new_partitions > 0,
        "recipients' records went to the new partitions too, and were delivered: {} of {}",
        on_new_partitions,
        records.len()
    );
}
