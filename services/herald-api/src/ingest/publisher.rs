//! Produces committed notifications to Kafka: one record per (notification, recipient), keyed by
//! recipient.
//!
//! Fast-path batches go through one enqueuing task, in the order the writers handed them over
//! (which is before the clients got their 202), so one recipient's records enter the producer,
//! and therefore its partition, in acceptance order. Acknowledgements are awaited concurrently.

use std::sync::Arc;

use futures::future::join_all;
use herald_domain::NotificationEnvelope;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::outgoing::OutgoingNotification;
use super::OutboxCleaner;
use crate::metrics;

/// Records enqueued between two yields to the scheduler: enqueueing copies into librdkafka, and an
/// async task must not hold its thread for long.
const RECORDS_PER_YIELD: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the producer refused a record")]
    Enqueue(#[source] KafkaError),
    #[error("the broker did not acknowledge a record")]
    Delivery(#[source] KafkaError),
    #[error("the producer dropped a record")]
    Cancelled,
}

struct FastPathBatch {
    outbox_batch_id: Uuid,
    notifications: Vec<OutgoingNotification>,
}

#[derive(Clone)]
pub struct Publisher {
    records: RecordProducer,
    fast_path: mpsc::Sender<FastPathBatch>,
}

impl Publisher {
    /// Starts the fast-path enqueuer on `tasks`; it ends when the last `Publisher` is dropped and
    /// its queue is drained. At most `max_fast_path_batches` batches wait or await acknowledgement:
    /// beyond that a batch is left to the relay, so a slow or absent broker costs bounded memory.
    pub fn start(
        producer: FutureProducer,
        topic: &str,
        cleaner: OutboxCleaner,
        max_fast_path_batches: usize,
        tasks: &TaskTracker,
    ) -> Publisher {
        let records = RecordProducer {
            producer,
            topic: topic.into(),
        };
        let (fast_path, queue) = mpsc::channel(max_fast_path_batches);
        tasks.spawn(run_fast_path(
            queue,
            records.clone(),
            cleaner,
            Arc::new(Semaphore::new(max_fast_path_batches)),
            tasks.clone(),
        ));
        Publisher { records, fast_path }
    }

    /// Hands a freshly committed batch to the fast path. Call it before answering the clients.
    pub fn publish_fast_path(
        &self,
        outbox_batch_id: Uuid,
        notifications: Vec<OutgoingNotification>,
    ) {
        let batch = FastPathBatch {
            outbox_batch_id,
            notifications,
        };
        if self.fast_path.try_send(batch).is_err() {
            metrics::KAFKA_PUBLISH
                .with_label_values(&["fast_path", "deferred_to_relay"])
                .inc();
        }
    }

    /// Publishes and waits until the broker acknowledged every record (or one failed).
    pub async fn publish(
        &self,
        notifications: &[OutgoingNotification],
    ) -> Result<(), PublishError> {
        let enqueued = self.records.enqueue(notifications).await;
        await_acknowledgements(enqueued).await
    }
}

async fn run_fast_path(
    mut queue: mpsc::Receiver<FastPathBatch>,
    records: RecordProducer,
    cleaner: OutboxCleaner,
    in_flight: Arc<Semaphore>,
    tasks: TaskTracker,
) {
    while let Some(batch) = queue.recv().await {
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let enqueued = records.enqueue(&batch.notifications).await;
        drop(batch.notifications);
        let cleaner = cleaner.clone();
        let outbox_batch_id = batch.outbox_batch_id;
        tasks.spawn(async move {
            match await_acknowledgements(enqueued).await {
                Ok(()) => {
                    metrics::KAFKA_PUBLISH.with_label_values(&["fast_path", "ok"]).inc();
                    cleaner.batch_published(outbox_batch_id);
                }
                Err(error) => {
                    metrics::KAFKA_PUBLISH.with_label_values(&["fast_path", "failed"]).inc();
                    tracing::warn!(%outbox_batch_id, error = %error, "publish failed; the outbox relay will retry");
                }
            }
            drop(slot);
        });
    }
}

struct Enqueued {
    deliveries: Vec<DeliveryFuture>,
    error: Option<KafkaError>,
}

#[derive(Clone)]
struct RecordProducer {
    producer: FutureProducer,
    topic: Arc<str>,
}

impl RecordProducer {
    /// Enqueues one record per recipient; stops at the first refusal (e.g. queue full).
    async fn enqueue(&self, notifications: &[OutgoingNotification]) -> Enqueued {
        let mut deliveries = Vec::new();
        for notification in notifications {
            for envelope in notification.envelopes() {
                let key =
                    NotificationEnvelope::partition_key(envelope.tenant_id, &envelope.user_id);
                let payload =
                    serde_json::to_vec(&envelope).expect("an envelope always serializes to JSON");
                let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
                match self.producer.send_result(record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _record)) => {
                        return Enqueued {
                            deliveries,
                            error: Some(error),
                        }
                    }
                }
                if deliveries.len() % RECORDS_PER_YIELD == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        Enqueued {
            deliveries,
            error: None,
        }
    }
}

/// Awaits every enqueued record, even after a failure, so no report is left dangling.
async fn await_acknowledgements(enqueued: Enqueued) -> Result<(), PublishError> {
    let reports = join_all(enqueued.deliveries).await;
    if let Some(error) = enqueued.error {
        return Err(PublishError::Enqueue(error));
    }
    for report in reports {
        match report {
            Ok(Ok(_delivery)) => {}
            Ok(Err((error, _message))) => return Err(PublishError::Delivery(error)),
            Err(_cancelled) => return Err(PublishError::Cancelled),
        }
    }
    Ok(())
}
