//! Kafka client set-up, once for every Herald process: the producer's durability settings, the
//! consumer's base configuration, the topics and their retention, and broker reachability.

pub mod metrics;
pub mod trace_context;

use std::time::Duration;

use herald_config::{KafkaSettings, RetentionSettings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
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

/// The producer's client context: turns librdkafka's statistics into the queue-depth gauge.
pub struct ProducerStatistics {
    role: ProducerRole,
}

impl ClientContext for ProducerStatistics {
    fn stats(&self, statistics: Statistics) {
        metrics::PRODUCER_QUEUE
            .with_label_values(&[self.role.as_label()])
            .set(statistics.msg_cnt as i64);
    }
}

/// Every Herald producer: a `FutureProducer` whose statistics feed the metrics.
pub type HeraldProducer = FutureProducer<ProducerStatistics>;

/// What every client of the cluster shares: brokers and bounded network waits.
pub fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("socket.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "5000");
    config
}

/// A producer with Herald's durability settings; `client_id` names it in the broker's logs, `role`
/// in the metrics.
pub fn create_producer(
    settings: &KafkaSettings,
    client_id: &str,
    role: ProducerRole,
) -> anyhow::Result<HeraldProducer> {
    metrics::declare_producer(role);
    let producer = base_config(settings)
        .set("client.id", client_id)
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        // Durability: every in-sync replica has the record; retries cannot duplicate or reorder.
        .set(
            "enable.idempotence",
            settings.enable_idempotence.to_string(),
        )
        // Without idempotence only one request in flight keeps retries from reordering a key.
        .set(
            "max.in.flight.requests.per.connection",
            if settings.enable_idempotence {
                "5"
            } else {
                "1"
            },
        )
        .set("acks", "all")
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
/// (`settings.partitions` too), with Kafka's retention a day shorter than PostgreSQL's; existing
/// topics are fine.
pub async fn create_topics(
    settings: &KafkaSettings,
    retention: &RetentionSettings,
    status_events_topic: &str,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings).create()?;
    let retention_ms = retention.kafka_retention_ms().to_string();
    let dead_letters = herald_domain::envelope::dead_letter_topic(&settings.topic);
    let high_priority = settings.high_priority_topic();
    let topics = [
        NewTopic::new(
            &settings.topic,
            settings.partitions,
            TopicReplication::Fixed(1),
        )
        .set("retention.ms", &retention_ms),
        NewTopic::new(
            &high_priority,
            settings.partitions,
            TopicReplication::Fixed(1),
        )
        .set("retention.ms", &retention_ms),
        NewTopic::new(&dead_letters, 1, TopicReplication::Fixed(1))
            .set("retention.ms", &retention_ms),
        NewTopic::new(
            status_events_topic,
            settings.partitions,
            TopicReplication::Fixed(1),
        )
        .set("retention.ms", &retention_ms),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name} failed: {code}"),
        }
    }
    Ok(())
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
