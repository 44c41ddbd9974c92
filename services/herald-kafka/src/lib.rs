//! Kafka client set-up, once for every Herald process: the producer's durability settings, the
//! consumer's base configuration, the topics and their retention, and broker reachability.

pub mod leave_group;
pub mod metrics;
pub mod security;
pub mod trace_context;

pub use security::check_connection;

use std::collections::HashMap;
use std::time::Duration;

use herald_config::{GroupProtocol, KafkaSettings, RetentionSettings};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientConfig, Statistics};

/// How often librdkafka reports its statistics (the producer's queue depth, the consumer's lag).
pub const STATISTICS_INTERVAL_MS: &str = "1000";

/// Which Herald process a producer belongs to: the `client` label of its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerRole {
    /// The API's publisher and relay: notifications.
    Api,
    /// The worker: dead letters and replayed parked records.
    Worker,
}

impl ProducerRole {
    pub fn as_label(self) -> &'static str {
        match self {
            ProducerRole::Api => "api",
            ProducerRole::Worker => "worker",
        }
    }

    /// Counts one record's outcome: acknowledged by the broker, or not.
    pub fn count_outcome(self, acknowledged: bool) {
        let counter = if acknowledged {
            &metrics::PRODUCED
        } else {
            &metrics::PRODUCE_ERRORS
        };
        counter.with_label_values(&[self.as_label()]).inc();
    }
}

/// The producer's client context: turns librdkafka's statistics into the queue-depth gauge, and
/// notices a fatal error.
pub struct ProducerStatistics {
    role: ProducerRole,
}

impl ClientContext for ProducerStatistics {
    fn stats(&self, statistics: Statistics) {
        metrics::PRODUCER_QUEUE
            .with_label_values(&[self.role.as_label()])
            .set(statistics.msg_cnt as i64);
    }

    /// librdkafka's log lines, levelled as rdkafka's default forwards them, and its one sure sign of
    /// a fatal error: an idempotent producer whose sequence the broker can no longer accept logs it
    /// at LOG_EMERG with the facility `FATAL` (the error callback gets only the underlying code).
    /// Such a producer produces nothing more; only a new one would. The process reports itself
    /// broken (`/healthz` 503) to be restarted, while the outbox keeps every accepted notification.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if matches!(level, RDKafkaLogLevel::Emerg) && facility == "FATAL" {
            herald_telemetry::health::mark_broken("kafka_producer_failed");
            metrics::PRODUCER_FAILED
                .with_label_values(&[self.role.as_label()])
                .set(1);
            tracing::error!(target: "librdkafka", message, "the Kafka producer failed for good; this process reports itself broken to be restarted");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", facility, message),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, message),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, message)
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, message),
        }
    }
}

/// Every Herald producer: a `FutureProducer` whose statistics feed the metrics.
pub type HeraldProducer = FutureProducer<ProducerStatistics>;

/// What every client of the cluster shares: brokers, encryption and login (`kafka.security`),
/// bounded network waits, and how soon it sees partitions added to a topic. An error only when a
/// secret's file can no longer be read.
pub fn base_config(settings: &KafkaSettings) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("socket.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set(
            "topic.metadata.refresh.interval.ms",
            settings.metadata_refresh_ms.to_string(),
        );
    security::apply(&mut config, &settings.security)?;
    Ok(config)
}

/// A member of the consumer group `group_id`: the group protocol (docs/DESIGN.md, "Records and
/// partitions"), reading from the oldest record a new group has not committed, and offsets stored
/// only by the caller, after its side effect. `session_timeout_ms` applies to the classic protocol;
/// the consumer protocol's session timeout is the broker's.
pub fn group_consumer_config(
    settings: &KafkaSettings,
    group_id: &str,
    client_id: &str,
    session_timeout_ms: u64,
) -> anyhow::Result<ClientConfig> {
    let mut config = base_config(settings)?;
    config
        .set("group.id", group_id)
        .set("client.id", client_id)
        .set("group.protocol", settings.group_protocol.as_str())
        .set("enable.auto.offset.store", "false")
        // A group's first start reads what the topic holds: nothing produced before is skipped.
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50");
    if settings.group_protocol == GroupProtocol::Classic {
        config
            // Generous: a busy broker answering heartbeats late must not cost a rebalance.
            .set("session.timeout.ms", session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (session_timeout_ms / 10).to_string(),
            )
            // A rebalance moves only the partitions that change owner; the others keep working.
            .set("partition.assignment.strategy", "cooperative-sticky");
    }
    Ok(config)
}

/// A producer with Herald's durability settings; `client_id` names it in the broker's logs, `role`
/// in the metrics.
pub fn create_producer(
    settings: &KafkaSettings,
    client_id: &str,
    role: ProducerRole,
) -> anyhow::Result<HeraldProducer> {
    metrics::declare_producer(role);
    let producer = base_config(settings)?
        .set("client.id", client_id)
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        // Durability: every in-sync replica has the record (acks=all), and the idempotent producer
        // numbers each partition's batches, so the broker drops a retried duplicate and refuses a
        // gap: up to 5 requests in flight keep one key's records in order.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("compression.type", &settings.compression)
        .set("linger.ms", settings.linger_ms.to_string())
        .set("batch.num.messages", "10000")
        // The API refuses a notification whose record would exceed `max_record_bytes`, so no valid
        // record is ever refused for its size.
        .set(
            "message.max.bytes",
            settings.producer_message_max_bytes().to_string(),
        )
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .set(
            "queue.buffering.max.messages",
            settings.queue_max_messages.to_string(),
        )
        .set("queue.buffering.max.kbytes", "1048576")
        // The Java client's partitioner: the same key lands on the same partition from any client.
        .set("partitioner", "murmur2_random")
        .create_with_context(ProducerStatistics { role })?;
    Ok(producer)
}

/// Creates the notifications topic and its high-priority twin (`settings.partitions` partitions
/// each), the dead-letter topic and the delivery status events topic `status_events_topic`
/// (`settings.partitions` too), with `settings.replication_factor` replicas, its
/// `min_insync_replicas`, and Kafka's retention a day shorter than PostgreSQL's (the status events'
/// `status_events_retention_ms`: `StatusEventsSettings::kafka_retention_ms`). An existing topic
/// with fewer partitions than that is raised to it (Kafka can add partitions, never remove them):
/// running clients find the new partitions within `metadata_refresh_ms`.
pub async fn create_topics(
    settings: &KafkaSettings,
    retention: &RetentionSettings,
    status_events_topic: &str,
    status_events_retention_ms: i64,
) -> anyhow::Result<()> {
    // A refused login or certificate is named at once, not found out as an admin request's
    // timeout.
    check_connection(settings, Duration::from_secs(15)).await?;
    let admin: AdminClient<DefaultClientContext> = base_config(settings)?.create()?;
    let retention_ms = retention.kafka_retention_ms().to_string();
    let status_events_retention_ms = status_events_retention_ms.to_string();
    let min_insync_replicas = settings.min_insync_replicas.to_string();
    let dead_letters = herald_domain::envelope::dead_letter_topic(&settings.topic);
    let high_priority = settings.high_priority_topic();
    let topic = |name, partitions, retention_ms| {
        new_topic(
            name,
            partitions,
            settings,
            retention_ms,
            &min_insync_replicas,
        )
    };
    let topics = [
        topic(&settings.topic, settings.partitions, &retention_ms),
        topic(&high_priority, settings.partitions, &retention_ms),
        topic(&dead_letters, 1, &retention_ms),
        topic(
            status_events_topic,
            settings.partitions,
            &status_events_retention_ms,
        ),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut existing = Vec::new();
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(name),
            Err((name, code)) => anyhow::bail!("creating topic {name} failed: {code}"),
        }
    }
    let current = partition_counts(settings, &existing).await?;
    let raised: Vec<NewPartitions> = topics
        .iter()
        .filter(|topic| {
            current
                .get(topic.name)
                .is_some_and(|&count| count < topic.num_partitions)
        })
        .map(|topic| NewPartitions::new(topic.name, topic.num_partitions as usize))
        .collect();
    if !raised.is_empty() {
        for result in admin.create_partitions(&raised, &options).await? {
            if let Err((name, code)) = result {
                anyhow::bail!("adding partitions to topic {name} failed: {code}");
            }
        }
    }
    Ok(())
}

/// How many partitions each of `topics` has, as the cluster's metadata says.
async fn partition_counts(
    settings: &KafkaSettings,
    topics: &[String],
) -> anyhow::Result<HashMap<String, i32>> {
    let client: BaseConsumer = base_config(settings)?.create()?;
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut counts = HashMap::new();
        for topic in topics {
            let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions = metadata
                .topics()
                .first()
                .map_or(0, |found| found.partitions().len());
            counts.insert(topic, partitions as i32);
        }
        Ok(counts)
    })
    .await?
}

/// One topic as `create_topics` makes it.
fn new_topic<'a>(
    name: &'a str,
    partitions: i32,
    settings: &KafkaSettings,
    retention_ms: &'a str,
    min_insync_replicas: &'a str,
) -> NewTopic<'a> {
    // -1: the brokers' default.replication.factor (CreateTopics v4, KIP-464).
    let topic = NewTopic::new(
        name,
        partitions,
        TopicReplication::Fixed(settings.replication_factor),
    )
    .set("retention.ms", retention_ms);
    if settings.min_insync_replicas > 0 {
        topic.set("min.insync.replicas", min_insync_replicas)
    } else {
        topic
    }
}

/// Whether the broker answers a metadata request for `topic` within `timeout`.
pub async fn broker_reachable<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    topic: &str,
    timeout: Duration,
) -> bool {
    let producer = producer.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), timeout)
            .map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .any(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use herald_config::Settings;

    use super::*;

    #[tokio::test]
    async fn a_producer_that_fails_for_good_marks_the_process_broken() {
        let settings = Settings::load(None).unwrap();
        let producer = create_producer(&settings.kafka, "fatal-test", ProducerRole::Api).unwrap();
        assert_eq!(herald_telemetry::health::broken(), None);
        let reason = CString::new("a sequence the broker can no longer accept").unwrap();
        // librdkafka's own way to raise a fatal error, as an idempotent producer meets one.
        let raised = unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            )
        };
        assert_eq!(
            raised,
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        );
        assert!(
            producer.client().fatal_error().is_some(),
            "librdkafka took the fatal error"
        );
        // The producer's polling thread serves the error callback.
        for _ in 0..250 {
            if herald_telemetry::health::broken().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            herald_telemetry::health::broken(),
            Some("kafka_producer_failed")
        );
        let failed = metrics::PRODUCER_FAILED.with_label_values(&["api"]).get();
        assert_eq!(failed, 1);
    }
}
