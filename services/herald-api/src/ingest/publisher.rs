//! Produces committed notifications to Kafka: one record per (notification, recipient), keyed by
//! recipient, on the topic of the notification's priority (docs/DESIGN.md, "Priority lanes").
//!
//! Every record ends acknowledged, parked (the broker refused it for good: it must never hold back
//! the records after it) or failed transiently (its outbox batch stays for the relay).
//!
//! Fast-path batches go through one enqueuing task, in the order the writers handed them over
//! (which is before the clients got their 202), so one recipient's records enter the producer,
//! and therefore its partition, in acceptance order. Acknowledgements are awaited concurrently.

use std::sync::Arc;

use herald_domain::{NotificationEnvelope, Priority};
use herald_kafka::trace_context::producer_headers;
use herald_kafka::{HeraldProducer, ProducerRole};
use herald_store::notifications::PublishableNotification;
use herald_store::outbox::ParkedRecord;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::OutboxCleaner;
use crate::metrics;

/// Records enqueued between two yields to the scheduler: enqueueing copies into librdkafka, and an
/// async task must not hold its thread for long.
const RECORDS_PER_YIELD: usize = 256;
/// Envelopes built at a time on the fast path (a notification may have thousands of recipients).
const FAST_PATH_CHUNK_RECORDS: usize = 10_000;

/// One record to produce.
struct ChunkRecord<'a> {
    batch: usize,
    envelope: NotificationEnvelope<'a>,
    /// Its notification's publication span (`Span::none()` when nothing is exported). Every record
    /// of the notification holds it until the broker answers, so it ends with the last answer.
    span: tracing::Span,
    /// That span's W3C context, which the record carries to the worker.
    traceparent: Option<Arc<str>>,
}

/// Where records go: `high` notifications on a topic of their own, so that they never wait in a
/// partition behind a backlog of `normal` and `low` ones.
#[derive(Clone)]
struct RecordTopics {
    ordinary: Arc<str>,
    high_priority: Arc<str>,
}

impl RecordTopics {
    fn new(kafka: &herald_config::KafkaSettings) -> RecordTopics {
        RecordTopics {
            ordinary: kafka.topic.as_str().into(),
            high_priority: kafka.high_priority_topic().into(),
        }
    }

    fn for_priority(&self, priority: Priority) -> &str {
        match priority {
            Priority::High => &self.high_priority,
            Priority::Normal | Priority::Low => &self.ordinary,
        }
    }
}

/// Walks the records of several outbox batches in order: batch, notification, recipient.
struct RecordCursor<'a> {
    batches: Vec<&'a [PublishableNotification]>,
    topics: &'a RecordTopics,
    batch: usize,
    notification: usize,
    recipient: usize,
    /// The publication span of the notification the cursor is in.
    publication: Option<(tracing::Span, Option<Arc<str>>)>,
}

impl<'a> RecordCursor<'a> {
    fn new(
        batches: Vec<&'a [PublishableNotification]>,
        topics: &'a RecordTopics,
    ) -> RecordCursor<'a> {
        RecordCursor {
            batches,
            topics,
            batch: 0,
            notification: 0,
            recipient: 0,
            publication: None,
        }
    }

    /// The batch of the next record, if any is left.
    fn current_batch(&self) -> Option<usize> {
        (self.batch < self.batches.len()).then_some(self.batch)
    }

    /// Up to `limit` next records.
    fn next_chunk(&mut self, limit: usize) -> Vec<ChunkRecord<'a>> {
        let mut chunk = Vec::with_capacity(limit.min(4096));
        while chunk.len() < limit && self.batch < self.batches.len() {
            let notifications = self.batches[self.batch];
            let Some(notification) = notifications.get(self.notification) else {
                self.batch += 1;
                self.notification = 0;
                continue;
            };
            let Some(user_id) = notification.user_ids.get(self.recipient) else {
                self.notification += 1;
                self.recipient = 0;
                self.publication = None;
                continue;
            };
            let topics = self.topics;
            let (span, traceparent) = self.publication.get_or_insert_with(|| {
                publication_span(topics.for_priority(notification.priority), notification)
            });
            chunk.push(ChunkRecord {
                batch: self.batch,
                envelope: notification.envelope(user_id),
                span: span.clone(),
                traceparent: traceparent.clone(),
            });
            self.recipient += 1;
        }
        chunk
    }
}

/// The span of one notification's publication: a producer span, child of the request that
/// accepted it, whose context its records carry (OpenTelemetry messaging conventions: `send`).
fn publication_span(
    topic: &str,
    notification: &PublishableNotification,
) -> (tracing::Span, Option<Arc<str>>) {
    if !herald_telemetry::traces::exporting() {
        return (tracing::Span::none(), None);
    }
    let span = tracing::info_span!(
        parent: None,
        "publish",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = topic,
        messaging.batch.message_count = notification.user_ids.len(),
        herald.notification.id = %notification.id,
    );
    herald_telemetry::traces::set_parent(&span, notification.trace_parent.as_deref());
    let traceparent = herald_telemetry::traces::traceparent_of(&span).map(Arc::from);
    (span, traceparent)
}

/// What became of the records of one outbox batch.
#[derive(Debug, Default, Clone)]
pub struct PublishReport {
    pub acknowledged: usize,
    /// Refused for good; to park.
    pub parked: Vec<ParkedRecord>,
    /// Why some record could not be published now; the batch must be published again later.
    pub transient_failure: Option<String>,
}

impl PublishReport {
    /// Every record is acknowledged or parked: the outbox batch can go.
    pub fn is_complete(&self) -> bool {
        self.transient_failure.is_none()
    }
}

/// Whether the broker or the producer refused a record for a reason that retrying cannot change.
/// Everything else (broker away, timeouts, a full local queue, a missing topic) passes.
fn is_permanent(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::BadMessage
    )
}

struct FastPathBatch {
    outbox_batch_id: Uuid,
    notifications: Vec<PublishableNotification>,
    _bytes: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct Publisher {
    records: RecordProducer,
    fast_path: mpsc::UnboundedSender<FastPathBatch>,
    fast_path_bytes: Arc<Semaphore>,
}

impl Publisher {
    /// Starts the fast-path enqueuer on `tasks`; it ends when the last `Publisher` is dropped and
    /// its queue is drained. At most `max_fast_path_bytes` of notifications wait for the broker on
    /// the fast path: beyond that a batch is left to the relay, so a slow or absent broker costs
    /// bounded memory.
    pub fn start(
        producer: HeraldProducer,
        kafka: &herald_config::KafkaSettings,
        cleaner: OutboxCleaner,
        max_fast_path_bytes: usize,
        tasks: &TaskTracker,
    ) -> Publisher {
        let records = RecordProducer {
            producer,
            topics: RecordTopics::new(kafka),
        };
        let (fast_path, queue) = mpsc::unbounded_channel();
        tasks.spawn(run_fast_path(
            queue,
            records.clone(),
            cleaner,
            tasks.clone(),
        ));
        Publisher {
            records,
            fast_path,
            fast_path_bytes: Arc::new(Semaphore::new(max_fast_path_bytes)),
        }
    }

    /// Hands a freshly committed batch to the fast path. Call it before answering the clients.
    pub fn publish_fast_path(
        &self,
        outbox_batch_id: Uuid,
        notifications: Vec<PublishableNotification>,
    ) {
        let bytes: usize = notifications
            .iter()
            .map(PublishableNotification::weight)
            .sum();
        let permit = u32::try_from(bytes).ok().and_then(|bytes| {
            self.fast_path_bytes
                .clone()
                .try_acquire_many_owned(bytes)
                .ok()
        });
        let Some(permit) = permit else {
            metrics::KAFKA_PUBLISH
                .with_label_values(&["fast_path", "deferred_to_relay"])
                .inc();
            return;
        };
        let batch = FastPathBatch {
            outbox_batch_id,
            notifications,
            _bytes: permit,
        };
        if self.fast_path.send(batch).is_err() {
            metrics::KAFKA_PUBLISH
                .with_label_values(&["fast_path", "deferred_to_relay"])
                .inc();
        }
    }

    /// Publishes the notifications of several outbox batches, at most `chunk_records` records in
    /// flight at a time, and reports per batch. Stops at the first transient failure: the batches
    /// not yet fully published report it.
    pub async fn publish_batches(
        &self,
        batches: &[Vec<PublishableNotification>],
        chunk_records: usize,
    ) -> Vec<PublishReport> {
        let mut reports = vec![PublishReport::default(); batches.len()];
        let mut cursor = RecordCursor::new(
            batches.iter().map(Vec::as_slice).collect(),
            &self.records.topics,
        );
        loop {
            let chunk = cursor.next_chunk(chunk_records);
            if chunk.is_empty() {
                break;
            }
            let enqueued = self.records.enqueue(chunk, &mut reports).await;
            let stopped_at = enqueued.stopped_at;
            enqueued.await_acknowledgements(&mut reports).await;
            let failed = stopped_at.is_some() || reports.iter().any(|report| !report.is_complete());
            if failed {
                // The broker is failing: the batches with records not attempted yet wait for the
                // next pass, like those that failed.
                if let Some(first) = stopped_at.or_else(|| cursor.current_batch()) {
                    for report in &mut reports[first..] {
                        report
                            .transient_failure
                            .get_or_insert_with(|| "not attempted after an earlier failure".into());
                    }
                }
                break;
            }
        }
        reports
    }
}

async fn run_fast_path(
    mut queue: mpsc::UnboundedReceiver<FastPathBatch>,
    records: RecordProducer,
    cleaner: OutboxCleaner,
    tasks: TaskTracker,
) {
    while let Some(batch) = queue.recv().await {
        let mut report = [PublishReport::default()];
        let mut cursor = RecordCursor::new(vec![batch.notifications.as_slice()], &records.topics);
        let mut enqueued = Enqueued::default();
        loop {
            let chunk = cursor.next_chunk(FAST_PATH_CHUNK_RECORDS);
            if chunk.is_empty() {
                break;
            }
            let more = records.enqueue(chunk, &mut report).await;
            enqueued.pending.extend(more.pending);
            if more.stopped_at.is_some() {
                enqueued.stopped_at = more.stopped_at;
                break;
            }
        }
        let cleaner = cleaner.clone();
        let outbox_batch_id = batch.outbox_batch_id;
        let bytes = batch._bytes;
        drop(batch.notifications);
        tasks.spawn(async move {
            let [mut report] = report;
            if enqueued.stopped_at.is_some() {
                report
                    .transient_failure
                    .get_or_insert_with(|| "the producer queue is full".into());
            }
            enqueued
                .await_acknowledgements(std::slice::from_mut(&mut report))
                .await;
            let outcome = if report.is_complete() { "ok" } else { "failed" };
            metrics::KAFKA_PUBLISH
                .with_label_values(&["fast_path", outcome])
                .inc();
            if let Some(failure) = &report.transient_failure {
                tracing::warn!(%outbox_batch_id, %failure, "publish failed; the outbox relay will retry");
            }
            cleaner.report(outbox_batch_id, report);
            drop(bytes);
        });
    }
}

struct PendingRecord {
    batch: usize,
    notification_id: Uuid,
    user_id: String,
    delivery: DeliveryFuture,
    /// Its notification's publication span, kept open until the broker answers.
    span: tracing::Span,
}

/// Records handed to the producer, waiting for the broker.
#[derive(Default)]
struct Enqueued {
    pending: Vec<PendingRecord>,
    /// Enqueueing stopped (transiently) at a record of this batch; the rest was not attempted.
    stopped_at: Option<usize>,
}

impl Enqueued {
    /// Awaits every enqueued record, even after a failure, so no report is left dangling.
    async fn await_acknowledgements(self, reports: &mut [PublishReport]) {
        for record in self.pending {
            let report = &mut reports[record.batch];
            let outcome = record.delivery.await;
            ProducerRole::Api.count_outcome(matches!(outcome, Ok(Ok(_))));
            if !matches!(outcome, Ok(Ok(_))) {
                herald_telemetry::traces::set_error(&record.span, "a record was not acknowledged");
            }
            match outcome {
                Ok(Ok(_delivered)) => report.acknowledged += 1,
                Ok(Err((error, _message))) if is_permanent(&error) => {
                    park(report, record.notification_id, record.user_id, &error)
                }
                Ok(Err((error, _message))) => {
                    report.transient_failure.get_or_insert_with(|| {
                        format!("the broker did not acknowledge a record: {error}")
                    });
                }
                Err(_cancelled) => {
                    report
                        .transient_failure
                        .get_or_insert_with(|| "the producer dropped a record".into());
                }
            }
        }
    }
}

fn park(report: &mut PublishReport, notification_id: Uuid, user_id: String, error: &KafkaError) {
    metrics::OUTBOX_PARKED.inc();
    tracing::error!(%notification_id, %user_id, %error, "the broker refused a record for good; parked");
    report.parked.push(ParkedRecord {
        notification_id,
        user_id,
        reason: format!("the producer refused the record: {error}"),
    });
}

#[derive(Clone)]
struct RecordProducer {
    producer: HeraldProducer,
    topics: RecordTopics,
}

impl RecordProducer {
    /// Enqueues the records in order. A record refused for good is parked into its batch's report;
    /// a transient refusal (the local queue is full) stops the enqueueing.
    async fn enqueue(
        &self,
        records: Vec<ChunkRecord<'_>>,
        reports: &mut [PublishReport],
    ) -> Enqueued {
        let mut pending = Vec::with_capacity(records.len());
        for (position, record) in records.into_iter().enumerate() {
            let ChunkRecord {
                batch,
                envelope,
                span,
                traceparent,
            } = record;
            let key = NotificationEnvelope::partition_key(envelope.tenant_id, &envelope.user_id);
            let headers = traceparent.as_deref().map(producer_headers);
            let payload = envelope.encode();
            let topic = self.topics.for_priority(envelope.priority);
            let mut record = FutureRecord::to(topic).key(&key).payload(&payload);
            if let Some(headers) = headers {
                record = record.headers(headers);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => pending.push(PendingRecord {
                    batch,
                    notification_id: envelope.notification_id,
                    user_id: envelope.user_id.into_owned(),
                    delivery,
                    span,
                }),
                Err((error, _record)) if is_permanent(&error) => {
                    ProducerRole::Api.count_outcome(false);
                    park(
                        &mut reports[batch],
                        envelope.notification_id,
                        envelope.user_id.into_owned(),
                        &error,
                    )
                }
                Err((error, _record)) => {
                    ProducerRole::Api.count_outcome(false);
                    reports[batch]
                        .transient_failure
                        .get_or_insert_with(|| format!("the producer refused a record: {error}"));
                    return Enqueued {
                        pending,
                        stopped_at: Some(batch),
                    };
                }
            }
            if (position + 1) % RECORDS_PER_YIELD == 0 {
                tokio::task::yield_now().await;
            }
        }
        Enqueued {
            pending,
            stopped_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_validity_refusals_are_permanent_everything_else_passes() {
        let production = |code| KafkaError::MessageProduction(code);
        assert!(is_permanent(&production(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert!(is_permanent(&production(RDKafkaErrorCode::InvalidRecord)));
        assert!(!is_permanent(&production(RDKafkaErrorCode::QueueFull)));
        assert!(!is_permanent(&production(
            RDKafkaErrorCode::MessageTimedOut
        )));
        assert!(!is_permanent(&production(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
        assert!(!is_permanent(&KafkaError::Canceled));
    }
}
