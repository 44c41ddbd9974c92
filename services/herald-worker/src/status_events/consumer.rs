//! The events consumer: reads the events topic in its own consumer group and, per batch, stores one
//! send per (event, matching subscription) in `webhook_event_sends`. Only after that insert is
//! committed are the batch's offsets stored (and committed by librdkafka's periodic commit of
//! stored offsets): a crash before it reads the batch again, and the insert ignores pairs it
//! already holds.
//!
//! Its only side effect is that insert: no subscriber's endpoint is called here, so a slow or
//! failing endpoint never holds a partition back (the dispatcher sends; see `dispatcher.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_config::Settings;
use herald_domain::status_events::StatusEvent;
use herald_store::webhook_event_sends::{self, NewSend};
use herald_store::Database;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::metrics;
use super::subscription_cache::SubscriptionCache;

const BATCH_SIZE: usize = 500;
const BATCH_LINGER: Duration = Duration::from_millis(20);
const RETRY_PAUSE: Duration = Duration::from_secs(1);

fn create_consumer(settings: &Settings) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = herald_kafka::group_consumer_config(
        &settings.kafka,
        &settings.status_events.subscriptions_group_id,
        "herald-worker-status-events",
        settings.worker.session_timeout_ms,
    )
    // librdkafka commits, every second, only the offsets this code stored: those of batches whose
    // sends are in PostgreSQL.
    .set("enable.auto.commit", "true")
    .set("auto.commit.interval.ms", "1000")
    .create()?;
    consumer.subscribe(&[&settings.status_events.topic])?;
    Ok(consumer)
}

/// Consumes until `stop`, then commits what it stored and leaves the group.
pub async fn run_events_consumer(
    settings: Settings,
    database: Database,
    subscriptions: SubscriptionCache,
    stop: CancellationToken,
) {
    let consumer = loop {
        match create_consumer(&settings) {
            Ok(consumer) => break Arc::new(consumer),
            Err(error) => {
                tracing::error!(%error, "creating the status events consumer failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    };
    let mut batch: Vec<OwnedMessage> = Vec::with_capacity(BATCH_SIZE);
    'consuming: loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            received = consumer.recv() => received.map(|message| message.detach()),
        };
        match first {
            Ok(message) => batch.push(message),
            Err(error) => {
                tracing::warn!(%error, "status events consumer error");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        }
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while batch.len() < BATCH_SIZE {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                _ => break,
            }
        }
        loop {
            let max_pending = settings.status_events.max_pending_per_subscription;
            match store_sends(&database, &subscriptions, &batch, max_pending).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, "storing status event sends failed; retrying the batch");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        // Not stored: read again by whoever holds the partition next.
                        _ = stop.cancelled() => break 'consuming,
                    }
                }
            }
        }
        for message in &batch {
            if let Err(error) =
                consumer.store_offset(message.topic(), message.partition(), message.offset())
            {
                // The partition was revoked meanwhile: its new owner reads the batch again.
                tracing::debug!(%error, "storing a status event offset failed");
            }
        }
        batch.clear();
    }
    // The last stored offsets, then leave the group (dropping the last reference closes it).
    let leave_timeout = crate::consumer::leave_timeout(&settings);
    herald_kafka::leave_group::commit_and_leave_within("status events", leave_timeout, move || {
        if let Err(error) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
            tracing::debug!(%error, "the last status events commit failed; the records are read again");
        }
        drop(consumer);
    })
    .await;
}

/// Stores a send per (event, subscription that wants it). Records that are not status events are
/// counted and skipped: they can never become one.
async fn store_sends(
    database: &Database,
    subscriptions: &SubscriptionCache,
    batch: &[OwnedMessage],
    max_pending_per_subscription: u64,
) -> anyhow::Result<()> {
    let mut events: Vec<(StatusEvent, &str)> = Vec::with_capacity(batch.len());
    for message in batch {
        let decoded = message
            .payload()
            .and_then(|payload| std::str::from_utf8(payload).ok())
            .and_then(|text| Some((serde_json::from_str::<StatusEvent>(text).ok()?, text)));
        match decoded {
            Some(event) => events.push(event),
            None => {
                metrics::EVENTS_UNDECODABLE.inc();
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "a record of the events topic is not a status event; skipped"
                );
            }
        }
    }
    let mut tenant_ids: Vec<Uuid> = events.iter().map(|(event, _)| event.tenant_id).collect();
    tenant_ids.sort_unstable();
    tenant_ids.dedup();
    let by_tenant: HashMap<_, _> = subscriptions.of_tenants(&tenant_ids).await?;
    let sends: Vec<NewSend> = events
        .iter()
        .flat_map(|(event, payload)| {
            by_tenant
                .get(&event.tenant_id)
                .into_iter()
                .flat_map(|subscriptions| subscriptions.iter())
                .filter(|subscription| subscription.wants(event.data.status))
                .map(|subscription| NewSend {
                    subscription_id: subscription.id,
                    event_id: event.id,
                    payload: (*payload).to_owned(),
                })
        })
        .collect();
    let enqueued =
        webhook_event_sends::enqueue(database, &sends, max_pending_per_subscription).await?;
    metrics::SENDS_ENQUEUED.inc_by(enqueued.stored.max(0) as u64);
    metrics::SENDS_DROPPED.inc_by(enqueued.dropped.max(0) as u64);
    Ok(())
}
