//! The status-events consumer reports its own lag (`herald_status_events_consumer_lag`, from the
//! same librdkafka statistics as the notifications consumers' `herald_consumer_lag`), so its alerts
//! and dashboard panel work without kafka-exporter.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_domain::status_events::{event_type, StatusEvent, StatusEventData};
use herald_domain::{Channel, DeliveryStatus, ProviderId};
use herald_kafka::ProducerRole;
use rdkafka::producer::FutureRecord;
use sea_orm::{ConnectionTrait, TransactionTrait};
use uuid::Uuid;

use crate::helpers::*;

const LAG_METRIC: &str = "herald_status_events_consumer_lag";
/// More than two of the consumer's batches (500): while its first batch waits, it fills the next
/// and then pauses its partitions, and must still skip none of the events.
const EVENTS: usize = 1200;

/// Produces `EVENTS` status events of `stack`'s tenant to the events topic, each keyed by its own
/// notification (so they spread over the partitions); returns how many each partition got.
async fn produce_status_events(stack: &Stack) -> BTreeMap<i32, i64> {
    let producer = herald_kafka::create_producer(
        &stack.settings.kafka,
        "status-events-lag-test",
        ProducerRole::Worker,
    )
    .unwrap();
    let events: Vec<(String, String)> = (0..EVENTS)
        .map(|_| {
            let event = StatusEvent {
                id: Uuid::new_v4(),
                event_type: event_type(DeliveryStatus::Sent),
                timestamp: chrono::Utc::now(),
                tenant_id: stack.tenant_id,
                data: StatusEventData {
                    notification_id: Uuid::new_v4(),
                    delivery_id: Uuid::new_v4(),
                    user_id: "lagging-user".to_owned(),
                    channel: Channel::Email,
                    provider: ProviderId::SendGrid,
                    status: DeliveryStatus::Sent,
                    previous_status: Some(DeliveryStatus::Sending),
                },
            };
            let key = event.data.notification_id.to_string();
            (key, serde_json::to_string(&event).unwrap())
        })
        .collect();
    let deliveries = futures::future::join_all(events.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(&stack.settings.status_events.topic)
                .key(key)
                .payload(payload),
            Duration::from_secs(10),
        )
    }))
    .await;
    let mut per_partition = BTreeMap::new();
    for delivery in deliveries {
        let delivered = delivery
            .unwrap_or_else(|(error, _)| panic!("producing a status event failed: {error}"));
        *per_partition.entry(delivered.partition).or_insert(0) += 1;
    }
    per_partition
}

/// The lag a worker process reports for each partition of `topic`, from its `/metrics`.
async fn reported_lag(metrics_port: u16, topic: &str) -> BTreeMap<i32, i64> {
    let topic_label = format!("topic=\"{topic}\"");
    worker_metrics(metrics_port)
        .await
        .lines()
        .filter_map(|line| {
            let labels_and_value = line.strip_prefix(LAG_METRIC)?.strip_prefix('{')?;
            let (labels, value) = labels_and_value.split_once("} ")?;
            if !labels.split(',').any(|label| label == topic_label) {
                return None;
            }
            let partition = labels
                .split(',')
                .find_map(|label| label.strip_prefix("partition=\""))?
                .trim_end_matches('"')
                .parse()
                .ok()?;
            Some((partition, value.trim().parse::<f64>().ok()? as i64))
        })
        .collect()
}

/// Polls the worker's lag of `topic` until `wanted` holds, for at most `timeout`; panics with
/// `what` and the last lag it saw otherwise.
async fn wait_for_lag(
    metrics_port: u16,
    topic: &str,
    timeout: Duration,
    what: &str,
    wanted: impl Fn(&BTreeMap<i32, i64>) -> bool,
) -> BTreeMap<i32, i64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let lag = reported_lag(metrics_port, topic).await;
        if wanted(&lag) {
            return lag;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {timeout:?}: {LAG_METRIC} of {topic} per partition is {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Events produced while no worker runs are the status-events group's lag on each partition they
/// went to, reported by the worker that joins the group, until it has consumed them: then 0, and
/// each of them was stored once for the tenant's subscription (none skipped by the pause).
///
/// The test holds an exclusive lock on `webhook_subscriptions` while the worker starts: the
/// consumer looks up the events' subscriptions there before it stores a batch's offsets, so it
/// cannot move past the events until the test lets it. Otherwise it could consume them all
/// before its first statistics, and whether a lag above 0 shows would be a matter of timing.
#[tokio::test]
async fn the_status_events_consumer_reports_its_lag_until_it_has_consumed_the_events() {
    let stack = prepare_stack(None, None, |_| {}).await;
    let topic = stack.settings.status_events.topic.clone();
    let created = herald_store::webhook_subscriptions::create(
        &stack.database,
        stack.tenant_id,
        &format!("{}/webhooks/lagging", stack.simulator),
        &["*".to_owned()],
        "whsec_c3RhdHVzLWV2ZW50cy1sYWctdGVzdC1zZWNyZXQtMzI=",
        20,
    )
    .await
    .unwrap();
    assert!(
        matches!(
            created,
            herald_store::webhook_subscriptions::Created::Created(_)
        ),
        "creating the subscription"
    );
    let produced = produce_status_events(&stack).await;

    let lock = stack.database.connection().begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE webhook_subscriptions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let metrics_port = free_port();
    let _worker = worker_process(&stack.settings, metrics_port);

    // Nothing committed yet: each partition's lag is every event it holds.
    let behind = wait_for_lag(
        metrics_port,
        &topic,
        Duration::from_secs(60),
        "the worker did not report the produced events as the status-events group's lag",
        |lag| {
            produced
                .iter()
                .all(|(partition, events)| lag.get(partition) == Some(events))
        },
    )
    .await;
    assert_eq!(
        behind.values().sum::<i64>(),
        EVENTS as i64,
        "partitions without events report no lag: {behind:?}, produced {produced:?}"
    );

    lock.rollback().await.unwrap();
    // Consumed and committed: every partition that had events is still reported, at 0.
    wait_for_lag(
        metrics_port,
        &topic,
        Duration::from_secs(60),
        "the status-events lag did not fall to 0 once the events could be consumed",
        |lag| {
            produced.keys().all(|partition| lag.contains_key(partition))
                && lag.values().all(|behind| *behind == 0)
        },
    )
    .await;
    let enqueued = metric_value(
        &worker_metrics(metrics_port).await,
        "herald_webhook_subscription_sends_enqueued_total",
    );
    assert_eq!(
        enqueued, EVENTS as f64,
        "every event consumed is stored once for the subscription"
    );
}
