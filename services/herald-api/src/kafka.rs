//! Kafka clients of the API: the producer (durability settings live here, in one place) and the
//! admin operations `create-topics` and `/readyz` need.

use std::time::Duration;

use herald_config::KafkaSettings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::ClientConfig;

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("socket.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "5000");
    config
}

pub fn create_producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    let producer = base_config(settings)
        .set("client.id", "herald-api")
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
        .create()?;
    Ok(producer)
}

/// Creates `topic` with `partitions` partitions; an existing topic is fine.
pub async fn create_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings).create()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&new_topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name} failed: {code}"),
        }
    }
    Ok(())
}

/// Whether the broker answers a metadata request for `topic` within `timeout`.
pub async fn broker_reachable(producer: &FutureProducer, topic: &str, timeout: Duration) -> bool {
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
