//! The events consumer: reads the events topic in its own consumer group and, per batch, stores one
//! send per (event, matching subscription) in `webhook_event_sends`. Only after that insert is
//! committed are the batch's offsets stored (and committed by librdkafka's periodic commit of
//! stored offsets): a crash before it reads the batch again, and the insert ignores pairs it
//! already holds.
//!
//! While a batch is being stored the consumer is still polled (`serving_the_queue_while`), so its
//! statistics keep reporting its lag when the database holds a batch up.
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
use crate::consumer_lag::LagReportingContext;

const BATCH_SIZE: usize = 500;
const BATCH_LINGER: Duration = Duration::from_millis(20);
const RETRY_PAUSE: Duration = Duration::from_secs(1);

type EventsConsumer = StreamConsumer<LagReportingContext>;

fn create_consumer(settings: &Settings) -> anyhow::Result<EventsConsumer> {
    let consumer: EventsConsumer = herald_kafka::group_consumer_config(
        &settings.kafka,
        &settings.status_events.subscriptions_group_id,
        "herald-worker-status-events",
        settings.worker.session_timeout_ms,
    )?
    // librdkafka commits, every second, only the offsets this code stored: those of batches whose
    // sends are in PostgreSQL.
    .set("enable.auto.commit", "true")
    .set("auto.commit.interval.ms", "1000")
    // Its lag per partition, from its own watermarks, like the notifications consumers'.
    .set(
        "statistics.interval.ms",
        herald_kafka::STATISTICS_INTERVAL_MS,
    )
    .create_with_context(LagReportingContext::new(&metrics::CONSUMER_LAG))?;
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
    // Records that arrived while the previous batch was being stored: the next batch starts with them.
    let mut arrived: Vec<OwnedMessage> = Vec::with_capacity(BATCH_SIZE);
    'consuming: loop {
        if arrived.is_empty() {
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
        } else {
            std::mem::swap(&mut batch, &mut arrived);
        }
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while batch.len() < BATCH_SIZE {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                _ => break,
            }
        }
        let storing = async {
            loop {
                let max_pending = settings.status_events.max_pending_per_subscription;
                match store_sends(&database, &subscriptions, &batch, max_pending).await {
                    Ok(()) => return Stored::Yes,
                    Err(error) => {
                        tracing::warn!(%error, "storing status event sends failed; retrying the batch");
                        tokio::select! {
                            _ = tokio::time::sleep(RETRY_PAUSE) => {}
                            // Not stored: read again by whoever holds the partition next.
                            _ = stop.cancelled() => return Stored::No,
                        }
                    }
                }
            }
        };
        if serving_the_queue_while(&consumer, &mut arrived, storing).await == Stored::No {
            break 'consuming;
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

#[derive(PartialEq)]
enum Stored {
    Yes,
    /// Stopped before the batch was stored.
    No,
}

/// Awaits `work` (storing a batch) while still polling the consumer: librdkafka serves its
/// statistics (the lag, `herald_status_events_consumer_lag`), rebalances and errors only from a
/// poll, so a batch stuck on the database would otherwise freeze the reported lag just when it
/// grows. Records that arrive meanwhile go to `arrived`; once it holds a batch, the partitions are
/// paused: librdkafka drops what it fetched for them and, on resume, fetches again from the
/// first record not handed over, so nothing is skipped and `arrived` stays bounded.
async fn serving_the_queue_while<T>(
    consumer: &EventsConsumer,
    arrived: &mut Vec<OwnedMessage>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut paused = false;
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            biased;
            outcome = &mut work => break outcome,
            // Should pausing fail, polling stops at two batches: memory stays bounded either way.
            received = consumer.recv(), if arrived.len() < 2 * BATCH_SIZE => match received {
                Ok(message) => {
                    arrived.push(message.detach());
                    // Again on each record past the bound: a partition assigned meanwhile is paused too.
                    if arrived.len() >= BATCH_SIZE {
                        paused |= pause_assignment(consumer);
                    }
                }
                Err(error) => tracing::warn!(%error, "status events consumer error"),
            },
        }
    };
    if paused {
        match consumer.assignment() {
            // Resuming a partition that is not paused does nothing.
            Ok(assignment) => {
                if let Err(error) = consumer.resume(&assignment) {
                    tracing::warn!(%error, "resuming the status events partitions failed");
                }
            }
            Err(error) => tracing::warn!(%error, "reading the status events assignment failed"),
        }
    }
    outcome
}

/// Pauses every partition the consumer holds; whether it did.
fn pause_assignment(consumer: &EventsConsumer) -> bool {
    let paused = consumer
        .assignment()
        .and_then(|assignment| consumer.pause(&assignment));
    if let Err(error) = &paused {
        tracing::warn!(%error, "pausing the status events partitions failed");
    }
    paused.is_ok()
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
