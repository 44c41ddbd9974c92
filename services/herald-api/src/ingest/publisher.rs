//! Produces committed notifications to Kafka: one record per (notification, recipient), keyed by
//! recipient. `publish` resolves only when the broker acknowledged every record (or one failed).

use std::sync::Arc;

use futures::future::join_all;
use herald_domain::NotificationEnvelope;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::outgoing::OutgoingNotification;
use super::OutboxCleaner;
use crate::metrics;

/// Records enqueued between two yields to the scheduler: enqueueing copies into librdkafka, and an
/// async task must not hold its thread for long.
const RECORDS_PER_YIELD: usize = 256;

pub const NOTIFICATION_ID_HEADER: &str = "herald-notification-id";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the producer refused a record")]
    Enqueue(#[source] KafkaError),
    #[error("the broker did not acknowledge a record")]
    Delivery(#[source] KafkaError),
    #[error("the producer dropped a record")]
    Cancelled,
}

#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: Arc<str>,
    cleaner: OutboxCleaner,
    /// Fast-path batches in flight; when none is free the batch is left to the relay, so a slow
    /// or absent broker costs no memory beyond this bound.
    fast_path_slots: Arc<Semaphore>,
    /// Lets shutdown wait for fast-path publishes in flight.
    tasks: TaskTracker,
}

impl Publisher {
    pub fn new(
        producer: FutureProducer,
        topic: &str,
        cleaner: OutboxCleaner,
        max_fast_path_batches: usize,
        tasks: TaskTracker,
    ) -> Publisher {
        Publisher {
            producer,
            topic: topic.into(),
            cleaner,
            fast_path_slots: Arc::new(Semaphore::new(max_fast_path_batches)),
            tasks,
        }
    }

    /// Publishes a freshly committed batch in the background; on success its outbox entry is
    /// deleted, on failure it stays for the relay.
    pub fn publish_fast_path(
        &self,
        outbox_batch_id: Uuid,
        notifications: Vec<OutgoingNotification>,
    ) {
        let Ok(slot) = self.fast_path_slots.clone().try_acquire_owned() else {
            metrics::KAFKA_PUBLISH
                .with_label_values(&["fast_path", "deferred_to_relay"])
                .inc();
            return;
        };
        let publisher = self.clone();
        self.tasks.spawn(async move {
            match publisher.publish(&notifications).await {
                Ok(()) => {
                    metrics::KAFKA_PUBLISH.with_label_values(&["fast_path", "ok"]).inc();
                    publisher.cleaner.batch_published(outbox_batch_id);
                }
                Err(error) => {
                    metrics::KAFKA_PUBLISH.with_label_values(&["fast_path", "failed"]).inc();
                    tracing::warn!(%outbox_batch_id, error = %error, "publish failed; the outbox relay will retry");
                }
            }
            drop(slot);
        });
    }

    pub async fn publish(
        &self,
        notifications: &[OutgoingNotification],
    ) -> Result<(), PublishError> {
        let mut deliveries = Vec::new();
        let mut enqueue_error = None;
        'enqueue: for notification in notifications {
            let notification_id = notification.id.to_string();
            for envelope in notification.envelopes() {
                let key =
                    NotificationEnvelope::partition_key(envelope.tenant_id, &envelope.user_id);
                let payload =
                    serde_json::to_vec(&envelope).expect("an envelope always serializes to JSON");
                let headers = OwnedHeaders::new().insert(Header {
                    key: NOTIFICATION_ID_HEADER,
                    value: Some(notification_id.as_bytes()),
                });
                let record = FutureRecord::to(&self.topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers);
                match self.producer.send_result(record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _record)) => {
                        enqueue_error = Some(error);
                        break 'enqueue;
                    }
                }
                if deliveries.len() % RECORDS_PER_YIELD == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        // Await what was enqueued even after a failure, so no report is left dangling.
        let reports = join_all(deliveries).await;
        if let Some(error) = enqueue_error {
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
}
