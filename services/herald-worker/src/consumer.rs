//! The Kafka side of the worker: one dispatcher reads the consumer group's records and hands each
//! to its partition's task through a bounded channel (order within a partition, parallelism across
//! partitions, backpressure on the consumer). Offsets are committed by the partition tasks, after
//! their batch is recorded. Rebalance callbacks only drop channels: they never wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_config::Settings;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::batch::process_records;
use crate::context::WorkerContext;
use crate::metrics;

type PartitionKey = (String, i32);
type PartitionChannels = Arc<Mutex<HashMap<PartitionKey, mpsc::Sender<OwnedMessage>>>>;

/// Pause before retrying a batch whose database work failed (the batch is never skipped).
const BATCH_RETRY_PAUSE: Duration = Duration::from_secs(1);

pub struct RebalanceContext {
    partitions: PartitionChannels,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            // Dropping a sender lets that partition's task finish its batch and stop.
            let mut partitions = self.partitions.lock().expect("partition map poisoned");
            for element in revoked.elements() {
                partitions.remove(&(element.topic().to_owned(), element.partition()));
            }
            tracing::info!(revoked = revoked.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            tracing::info!(assigned = assigned.count(), "partitions assigned");
        }
    }
}

pub type WorkerConsumer = StreamConsumer<RebalanceContext>;

pub fn create_consumer(
    settings: &Settings,
) -> anyhow::Result<(Arc<WorkerConsumer>, PartitionChannels)> {
    let partitions: PartitionChannels = Arc::default();
    let mut config = ClientConfig::new();
    if let Some(instance_id) = &settings.worker.instance_id {
        config.set("group.instance.id", instance_id);
    }
    let consumer: WorkerConsumer = config
        .set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", &settings.worker.group_id)
        .set("client.id", "herald-worker")
        // Offsets move only when a batch's outcome is in PostgreSQL.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Generous: a busy broker answering heartbeats late must not cost a rebalance.
        .set("session.timeout.ms", "30000")
        .set("heartbeat.interval.ms", "3000")
        .set("max.poll.interval.ms", "300000")
        .set("fetch.wait.max.ms", "50")
        .create_with_context(RebalanceContext {
            partitions: partitions.clone(),
        })?;
    consumer.subscribe(&[&settings.kafka.topic])?;
    Ok((Arc::new(consumer), partitions))
}

pub struct PartitionSettings {
    pub batch_size: usize,
    pub batch_linger: Duration,
    pub buffer: usize,
}

/// Reads records until `shutdown`, routing them to per-partition tasks spawned on `tasks`.
pub async fn run_dispatcher(
    consumer: Arc<WorkerConsumer>,
    partitions: PartitionChannels,
    offsets: Arc<OffsetTracker>,
    context: Arc<WorkerContext>,
    settings: Arc<PartitionSettings>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            received = consumer.recv() => received,
            _ = shutdown.cancelled() => break,
        };
        let record = match received {
            Ok(record) => record.detach(),
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let key = (record.topic().to_owned(), record.partition());
        let channel = {
            let mut channels = partitions.lock().expect("partition map poisoned");
            channels
                .entry(key.clone())
                .or_insert_with(|| {
                    let (sender, receiver) = mpsc::channel(settings.buffer);
                    tasks.spawn(run_partition(
                        key.clone(),
                        receiver,
                        offsets.clone(),
                        context.clone(),
                        settings.clone(),
                        shutdown.clone(),
                    ));
                    sender
                })
                .clone()
        };
        tokio::select! {
            // A closed channel means the partition was revoked: the new owner reads it again.
            _ = channel.send(record) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    // Stop every partition task after its current batch.
    partitions.lock().expect("partition map poisoned").clear();
}

async fn run_partition(
    (topic, partition): PartitionKey,
    mut records: mpsc::Receiver<OwnedMessage>,
    offsets: Arc<OffsetTracker>,
    context: Arc<WorkerContext>,
    settings: Arc<PartitionSettings>,
    shutdown: CancellationToken,
) {
    tracing::debug!(%topic, partition, "partition task started");
    let mut batch = Vec::with_capacity(settings.batch_size);
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            received = records.recv() => match received {
                Some(record) => record,
                None => break,
            },
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + settings.batch_linger;
        while batch.len() < settings.batch_size {
            let next = match records.try_recv() {
                Ok(record) => Some(record),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, records.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(record) = next else { break };
            batch.push(record);
        }

        let started = std::time::Instant::now();
        loop {
            match process_records(&context, &batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%topic, partition, error = ?error, "batch failed; retrying it");
                    tokio::select! {
                        _ = tokio::time::sleep(BATCH_RETRY_PAUSE) => {}
                        // Uncommitted: the batch is read again after the restart.
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
        let next_offset = batch
            .last()
            .map(|record| record.offset() + 1)
            .unwrap_or_default();
        offsets.processed(&topic, partition, next_offset);
        metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
        batch.clear();
    }
    tracing::debug!(%topic, partition, "partition task stopped");
}

/// Offsets of recorded batches, committed together every `commit_interval`: one commit request
/// per interval rather than one per batch, so commits never crowd out the group heartbeats.
#[derive(Default)]
pub struct OffsetTracker {
    processed: Mutex<HashMap<PartitionKey, i64>>,
}

impl OffsetTracker {
    /// Everything before `next_offset` in this partition is recorded in PostgreSQL.
    pub fn processed(&self, topic: &str, partition: i32, next_offset: i64) {
        let mut processed = self.processed.lock().expect("offset map poisoned");
        let entry = processed
            .entry((topic.to_owned(), partition))
            .or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    /// Commits what was processed since the last call.
    pub fn commit(&self, consumer: &WorkerConsumer, mode: CommitMode) {
        let processed = std::mem::take(&mut *self.processed.lock().expect("offset map poisoned"));
        if processed.is_empty() {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next_offset) in &processed {
            if let Err(error) =
                offsets.add_partition_offset(topic, *partition, Offset::Offset(*next_offset))
            {
                tracing::warn!(%error, "building the offset commit failed");
            }
        }
        // A failed commit (e.g. a partition was just revoked) only means redelivery, which the
        // delivery claims make harmless.
        if let Err(error) = consumer.commit(&offsets, mode) {
            tracing::debug!(%error, "offset commit failed");
        }
    }
}

/// Commits processed offsets every `interval` until `shutdown`, then once more, synchronously,
/// after the partition tasks in `tasks` have finished.
pub async fn run_committer(
    consumer: Arc<WorkerConsumer>,
    offsets: Arc<OffsetTracker>,
    interval: Duration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticks.tick() => offsets.commit(&consumer, CommitMode::Async),
            _ = shutdown.cancelled() => break,
        }
    }
    tasks.wait().await;
    let _ = tokio::task::spawn_blocking(move || offsets.commit(&consumer, CommitMode::Sync)).await;
}
