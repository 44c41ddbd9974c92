//! The Kafka side of the worker (docs/DESIGN.md, "Records and partitions").
//!
//! Each assigned partition gets its own librdkafka queue (split in the rebalance callback, so its
//! records never pass through a shared dispatcher) and its own task: one partition's trouble never
//! stalls another. Rebalance callbacks only split queues and send events: they never wait. Offsets
//! are stored after a batch's admission is committed and committed every second.
//!
//! Rebalances are incremental with either group protocol (cooperative-sticky, or KIP-848's
//! consumer protocol): an assignment names only the partitions this worker gains, a revocation
//! only those it loses, and the others keep working through it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use herald_config::Settings;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::admit_records;
use crate::consumer_lag;
use crate::context::WorkerContext;
use crate::metrics;

type PartitionKey = (String, i32);
pub type WorkerConsumer = StreamConsumer<RebalanceContext>;
type PartitionQueue = StreamPartitionQueue<RebalanceContext>;

/// Pause before admitting a batch again after the database was unavailable.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a stopping consumer waits for its last commit and leaving its group.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

enum RebalanceEvent {
    Assigned(Vec<(PartitionKey, Option<PartitionQueue>)>),
    Revoked(Vec<PartitionKey>),
}

pub struct RebalanceContext {
    consumer: OnceLock<Weak<WorkerConsumer>>,
    events: mpsc::UnboundedSender<RebalanceEvent>,
}

impl ClientContext for RebalanceContext {
    /// Lag per assigned partition, from the consumer's own watermarks (librdkafka statistics).
    fn stats(&self, statistics: rdkafka::Statistics) {
        consumer_lag::publish_lag(&metrics::CONSUMER_LAG, &statistics);
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let partitions = revoked
                .elements()
                .iter()
                .map(|element| (element.topic().to_owned(), element.partition()))
                .collect();
            let _ = self.events.send(RebalanceEvent::Revoked(partitions));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                // Split each partition's queue right after the assignment, before its first fetch
                // can reach the shared queue.
                let consumer = self.consumer.get().and_then(Weak::upgrade);
                let partitions = assigned
                    .elements()
                    .iter()
                    .map(|element| {
                        let queue = consumer.as_ref().and_then(|consumer| {
                            consumer.split_partition_queue(element.topic(), element.partition())
                        });
                        ((element.topic().to_owned(), element.partition()), queue)
                    })
                    .collect();
                let _ = self.events.send(RebalanceEvent::Assigned(partitions));
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

pub struct ConsumerSettings {
    pub batch_size: usize,
    pub batch_linger: Duration,
}

/// What readiness knows about the consumers.
#[derive(Default)]
pub struct ConsumerStatus {
    /// Partitions held, of every topic.
    pub assigned: AtomicUsize,
    /// Partitions held per topic (each topic's member publishes its own).
    pub assigned_by_topic: Mutex<std::collections::BTreeMap<String, usize>>,
}

fn create_consumer(
    settings: &Settings,
    topic: &str,
) -> anyhow::Result<(Arc<WorkerConsumer>, mpsc::UnboundedReceiver<RebalanceEvent>)> {
    let (events, receiver) = mpsc::unbounded_channel();
    let mut config = herald_kafka::group_consumer_config(
        &settings.kafka,
        &settings.worker.group_id,
        "herald-worker",
        settings.worker.session_timeout_ms,
    )?;
    // Static membership: a restarted member with the same id takes its partitions back without
    // a rebalance, if it returns within the session timeout. One id per topic's member.
    if let Some(instance_id) = &settings.worker.instance_id {
        config.set("group.instance.id", format!("{instance_id}.{topic}"));
    }
    let consumer: WorkerConsumer = config
        // Offsets move only when a batch's admission is in PostgreSQL.
        .set("enable.auto.commit", "false")
        .set("max.poll.interval.ms", "300000")
        .set(
            "statistics.interval.ms",
            herald_kafka::STATISTICS_INTERVAL_MS,
        )
        // Per partition (partition queues are split): bytes buffered between fetch and admission.
        .set(
            "queued.max.messages.kbytes",
            settings.worker.partition_buffer_kbytes.to_string(),
        )
        .create_with_context(RebalanceContext {
            consumer: OnceLock::new(),
            events,
        })?;
    let consumer = Arc::new(consumer);
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
    consumer.subscribe(&[topic])?;
    Ok((consumer, receiver))
}

/// The topics a worker consumes, each by a group member of its own (docs/DESIGN.md, "Records and
/// partitions"): the main topic and the high-priority one.
pub fn consumed_topics(settings: &Settings) -> [String; 2] {
    [
        settings.kafka.topic.clone(),
        settings.kafka.high_priority_topic(),
    ]
}

/// Consumes `topic` until `stop`: joins the group, runs a task per assigned partition and commits
/// offsets. Returns after the last offsets are committed and the consumer has left its group.
///
/// A worker runs one of these per topic, each a member of the same group subscribed to its topic
/// only: the assignors balance each topic over the workers on its own. With one member subscribed
/// to both, cooperative-sticky balances the count of partitions, not each topic's, and a worker
/// that joined later was measured holding the high-priority topic's partitions alone, idle, while
/// the first admitted every ordinary record.
pub async fn run_consumer(
    settings: Settings,
    topic: String,
    context: Arc<WorkerContext>,
    status: Arc<ConsumerStatus>,
    stop: CancellationToken,
) {
    let consumer_settings = Arc::new(ConsumerSettings {
        batch_size: settings.worker.batch_size,
        batch_linger: Duration::from_millis(settings.worker.batch_linger_ms),
    });
    let (consumer, events) = loop {
        match create_consumer(&settings, &topic) {
            Ok(created) => break created,
            Err(error) => {
                tracing::error!(%error, topic, "creating the Kafka consumer failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    };
    let offsets = Arc::new(OffsetTracker::default());
    let partitions = TaskTracker::new();
    let mut published = PublishedAssignment::new(status, topic.clone());
    consume_until_stopped(
        &consumer,
        events,
        &context,
        &consumer_settings,
        &offsets,
        &partitions,
        &mut published,
        &stop,
    )
    .await;
    // Every partition task finishes its batch; then the last commit and the goodbye to the group.
    partitions.close();
    partitions.wait().await;
    drop(published);
    // The last commit, synchronously, then the goodbye (dropping the last reference closes it).
    herald_kafka::leave_group::commit_and_leave_within(
        &topic,
        leave_timeout(&settings),
        move || {
            offsets.commit(&consumer, CommitMode::Sync);
            drop(consumer);
        },
    )
    .await;
}

/// How long a stopping consumer waits for its last commit and its goodbye: a few seconds when the
/// broker answers in milliseconds, and never more than half the drain timeout, within which the
/// intake stops and the lanes send what they hold: with the broker away, the lanes keep the other
/// half.
pub(crate) fn leave_timeout(settings: &Settings) -> Duration {
    LEAVE_TIMEOUT.min(Duration::from_millis(settings.worker.drain_timeout_ms) / 2)
}

struct RunningPartition {
    stop: CancellationToken,
    stragglers: mpsc::UnboundedSender<OwnedMessage>,
}

#[allow(clippy::too_many_arguments)]
async fn consume_until_stopped(
    consumer: &Arc<WorkerConsumer>,
    mut events: mpsc::UnboundedReceiver<RebalanceEvent>,
    context: &Arc<WorkerContext>,
    settings: &Arc<ConsumerSettings>,
    offsets: &Arc<OffsetTracker>,
    partitions: &TaskTracker,
    published: &mut PublishedAssignment,
    stop: &CancellationToken,
) {
    let mut running: HashMap<PartitionKey, RunningPartition> = HashMap::new();
    let mut commits = tokio::time::interval(COMMIT_INTERVAL);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(event) = events.recv() => {
                apply(event, &mut running, context, settings, offsets, partitions, stop);
                published.publish(running.len());
            }
            received = consumer.recv() => {
                // The rebalance callbacks run inside `recv`: apply their events before routing.
                while let Ok(event) = events.try_recv() {
                    apply(event, &mut running, context, settings, offsets, partitions, stop);
                    published.publish(running.len());
                }
                match received {
                    Ok(message) => {
                        let message = message.detach();
                        let key = (message.topic().to_owned(), message.partition());
                        match running.get(&key) {
                            Some(partition) => { let _ = partition.stragglers.send(message); }
                            None => tracing::debug!(partition = key.1, "record of an unassigned partition dropped; it is read again"),
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            _ = commits.tick() => {
                running.retain(|_, partition| !partition.stop.is_cancelled());
                published.publish(running.len());
                let (consumer, offsets) = (consumer.clone(), offsets.clone());
                let _ = tokio::task::spawn_blocking(move || offsets.commit(&consumer, CommitMode::Async)).await;
            }
        }
    }
    for partition in running.values() {
        partition.stop.cancel();
    }
}

/// What one consumer has added to the worker's count of assigned partitions (shared by the
/// consumers of every topic): it publishes changes to its own share only, and takes its share
/// back when dropped (also when its consumer task panics and is restarted).
struct PublishedAssignment {
    status: Arc<ConsumerStatus>,
    topic: String,
    partitions: usize,
}

impl PublishedAssignment {
    fn new(status: Arc<ConsumerStatus>, topic: String) -> PublishedAssignment {
        PublishedAssignment {
            status,
            topic,
            partitions: 0,
        }
    }

    fn publish(&mut self, partitions: usize) {
        if partitions >= self.partitions {
            let gained = partitions - self.partitions;
            self.status.assigned.fetch_add(gained, Ordering::Relaxed);
            metrics::ASSIGNED_PARTITIONS.add(gained as i64);
        } else {
            let lost = self.partitions - partitions;
            self.status.assigned.fetch_sub(lost, Ordering::Relaxed);
            metrics::ASSIGNED_PARTITIONS.sub(lost as i64);
        }
        self.partitions = partitions;
        if let Ok(mut by_topic) = self.status.assigned_by_topic.lock() {
            by_topic.insert(self.topic.clone(), partitions);
        }
    }
}

impl Drop for PublishedAssignment {
    fn drop(&mut self) {
        self.publish(0);
    }
}

fn apply(
    event: RebalanceEvent,
    running: &mut HashMap<PartitionKey, RunningPartition>,
    context: &Arc<WorkerContext>,
    settings: &Arc<ConsumerSettings>,
    offsets: &Arc<OffsetTracker>,
    partitions: &TaskTracker,
    stop: &CancellationToken,
) {
    match event {
        RebalanceEvent::Assigned(assigned) => {
            tracing::info!(assigned = assigned.len(), "partitions assigned");
            metrics::PARTITIONS_MOVED
                .with_label_values(&["assigned"])
                .inc_by(assigned.len() as u64);
            for (key, queue) in assigned {
                if let Some(previous) = running.remove(&key) {
                    previous.stop.cancel();
                }
                let partition_stop = stop.child_token();
                let (stragglers, straggler_queue) = mpsc::unbounded_channel();
                partitions.spawn(run_partition(
                    key.clone(),
                    queue,
                    straggler_queue,
                    context.clone(),
                    settings.clone(),
                    offsets.clone(),
                    partition_stop.clone(),
                ));
                running.insert(
                    key,
                    RunningPartition {
                        stop: partition_stop,
                        stragglers,
                    },
                );
            }
        }
        RebalanceEvent::Revoked(revoked) => {
            tracing::info!(revoked = revoked.len(), "partitions revoked");
            metrics::PARTITIONS_MOVED
                .with_label_values(&["revoked"])
                .inc_by(revoked.len() as u64);
            for key in revoked {
                if let Some(partition) = running.remove(&key) {
                    // It finishes the batch in hand and stops; the new owner reads on from the
                    // last commit, and admission ignores deliveries that already exist.
                    partition.stop.cancel();
                }
                offsets.forget(&key);
            }
        }
    }
}

/// One partition: batches of records, admitted in offset order.
async fn run_partition(
    (topic, partition): PartitionKey,
    queue: Option<PartitionQueue>,
    mut stragglers: mpsc::UnboundedReceiver<OwnedMessage>,
    context: Arc<WorkerContext>,
    settings: Arc<ConsumerSettings>,
    offsets: Arc<OffsetTracker>,
    stop: CancellationToken,
) {
    tracing::debug!(%topic, partition, "partition task started");
    let mut batch: Vec<OwnedMessage> = Vec::with_capacity(settings.batch_size);
    loop {
        let Some(first) = next_record(&queue, &mut stragglers, &stop).await else {
            break;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + settings.batch_linger;
        while batch.len() < settings.batch_size {
            let next =
                tokio::time::timeout_at(deadline, next_record(&queue, &mut stragglers, &stop));
            match next.await {
                Ok(Some(record)) => batch.push(record),
                _ => break,
            }
        }
        let started = Instant::now();
        loop {
            match admit_records(&context, &batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%topic, partition, %error, "admission failed; retrying the batch");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        // Not stored: the batch is read again by whoever owns the partition next.
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
        if let Some(last) = batch.iter().map(|record| record.offset()).max() {
            offsets.processed(&topic, partition, last + 1);
        }
        metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
        metrics::CONSUMED.inc_by(batch.len() as u64);
        batch.clear();
    }
    tracing::debug!(%topic, partition, "partition task stopped");
}

async fn next_record(
    queue: &Option<PartitionQueue>,
    stragglers: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    stop: &CancellationToken,
) -> Option<OwnedMessage> {
    loop {
        if let Ok(straggler) = stragglers.try_recv() {
            return Some(straggler);
        }
        let received = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            straggler = stragglers.recv() => return straggler,
            received = async {
                match queue {
                    Some(queue) => queue.recv().await.map(|message| message.detach()),
                    None => std::future::pending().await,
                }
            } => received,
        };
        match received {
            Ok(record) => return Some(record),
            Err(error) => {
                tracing::warn!(%error, "partition queue error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Offsets of admitted batches, committed together every second: one commit request per interval
/// rather than one per batch, so commits never crowd out the group heartbeats.
#[derive(Default)]
pub struct OffsetTracker {
    processed: Mutex<HashMap<PartitionKey, i64>>,
}

impl OffsetTracker {
    /// Everything before `next_offset` in this partition is admitted.
    fn processed(&self, topic: &str, partition: i32, next_offset: i64) {
        let mut processed = self.processed.lock().expect("offset map poisoned");
        let entry = processed
            .entry((topic.to_owned(), partition))
            .or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    /// A revoked partition's pending offset belongs to its new owner's reading now.
    fn forget(&self, key: &PartitionKey) {
        self.processed
            .lock()
            .expect("offset map poisoned")
            .remove(key);
    }

    /// Commits what was processed since the last call.
    fn commit(&self, consumer: &WorkerConsumer, mode: CommitMode) {
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
        // A failed commit (a partition was just revoked) only means redelivery, which admission
        // makes harmless.
        if let Err(error) = consumer.commit(&offsets, mode) {
            tracing::debug!(%error, "offset commit failed");
        }
    }
}
