//! The status-event relay: leases rows of the `status_events` outbox, produces them to the events
//! topic (key: the notification id, so one delivery's events stay in order on one partition),
//! awaits every acknowledgement, and deletes what the broker acknowledged. At least once: a
//! worker that dies between the acknowledgement and the delete publishes again after the lease;
//! the event id is the same, and subscribers deduplicate by it.

use std::time::Duration;

use futures::future::join_all;
use herald_domain::status_events::{event_type, StatusEvent, StatusEventData};
use herald_kafka::{HeraldProducer, ProducerRole};
use herald_store::status_events::{self, PendingStatusEvent};
use herald_store::Database;
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::metrics;

pub struct RelaySettings {
    pub topic: String,
    pub interval: Duration,
    pub batch_limit: u64,
    pub lease: Duration,
}

/// The JSON of an event, as the topic and subscribers get it.
pub fn encode(event: &PendingStatusEvent) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&StatusEvent {
        id: event.id,
        event_type: event_type(event.status),
        timestamp: event.at,
        tenant_id: event.tenant_id,
        data: StatusEventData {
            notification_id: event.notification_id,
            delivery_id: event.delivery_id,
            user_id: event.user_id.clone(),
            channel: event.channel,
            provider: event.provider,
            status: event.status,
            previous_status: event.previous_status,
        },
    })
}

/// Relays until `stop`: a full batch is followed at once by the next, otherwise it waits an interval.
pub async fn run_relay(
    database: Database,
    producer: HeraldProducer,
    settings: std::sync::Arc<RelaySettings>,
    stop: CancellationToken,
) {
    let owner = Uuid::new_v4();
    loop {
        let relayed = match relay_once(&database, &producer, &settings, owner).await {
            Ok(relayed) => relayed,
            Err(error) => {
                tracing::warn!(%error, "relaying status events failed; retrying");
                0
            }
        };
        if let Ok(backlog) = status_events::backlog(&database).await {
            metrics::EVENTS_BACKLOG.set(backlog.events as i64);
            metrics::EVENTS_OLDEST_AGE.set(backlog.oldest_age_seconds as i64);
        }
        if relayed as u64 >= settings.batch_limit {
            if stop.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One pass: lease, produce, await, delete. Returns how many events it leased.
async fn relay_once(
    database: &Database,
    producer: &HeraldProducer,
    settings: &RelaySettings,
    owner: Uuid,
) -> anyhow::Result<usize> {
    let events =
        status_events::lease_pending(database, owner, settings.lease, settings.batch_limit).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut deliveries = Vec::with_capacity(events.len());
    for event in &events {
        let payload = match encode(event) {
            Ok(payload) => payload,
            Err(error) => {
                // Every field is a plain value: this cannot happen; the event stays leased.
                tracing::error!(%error, seq = event.seq, "a status event could not be encoded");
                continue;
            }
        };
        let key = event.notification_id.to_string();
        let record = FutureRecord::to(&settings.topic)
            .key(&key)
            .payload(&payload);
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push((event.seq, delivery)),
            Err((error, _record)) => {
                // The local queue is full or the producer is failing: the rest waits for the next
                // pass (after the lease), the records already queued are awaited.
                tracing::warn!(%error, "producing status events failed; the rest waits");
                ProducerRole::Worker.count_outcome(false);
                break;
            }
        }
    }
    let outcomes = join_all(
        deliveries
            .into_iter()
            .map(|(seq, delivery)| async move { (seq, delivery.await) }),
    )
    .await;
    let mut acknowledged = Vec::with_capacity(outcomes.len());
    for (seq, outcome) in outcomes {
        let ok = matches!(outcome, Ok(Ok(_)));
        ProducerRole::Worker.count_outcome(ok);
        if ok {
            acknowledged.push(seq);
        }
    }
    // Deleted even if our lease ran out meanwhile: they are published, whoever leased them since
    // publishes them once more at worst.
    status_events::delete_published(database, &acknowledged).await?;
    metrics::EVENTS_PRODUCED.inc_by(acknowledged.len() as u64);
    Ok(events.len())
}
