//! `herald-api create-topics`: the topics' retention as the settings give it.

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use uuid::Uuid;

use crate::helpers::*;

/// `retention.ms` of `topic`, as the broker reports it.
async fn retention_ms(brokers: &str, topic: &str) -> i64 {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let options = AdminOptions::new().request_timeout(Some(std::time::Duration::from_secs(10)));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await
        .unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    resource
        .get("retention.ms")
        .and_then(|entry| entry.value.as_deref())
        .expect("the topic has a retention.ms")
        .parse()
        .unwrap()
}

/// The status events are read within seconds and take most of the brokers' storage: their topic
/// keeps `status_events.retention_hours`, the notifications' topics `retention.days` − 1.
#[tokio::test]
async fn the_status_events_topic_keeps_its_own_retention_and_the_notifications_keep_theirs() {
    let mut settings = fresh_settings(&env("HERALD_TEST_KAFKA_BROKERS")).await;
    settings.status_events.topic = format!("notification-events-{}", Uuid::new_v4().simple());
    settings.kafka.topic = format!("notifications-{}", Uuid::new_v4().simple());
    settings.status_events.retention_hours = 72;
    herald_api::cli::create_topics(&settings).await.unwrap();

    let brokers = &settings.kafka.brokers;
    assert_eq!(
        retention_ms(brokers, &settings.status_events.topic).await,
        72 * 3_600_000
    );
    let notifications_retention_ms = (i64::from(settings.retention.days) - 1) * 86_400_000;
    for topic in [
        settings.kafka.topic.clone(),
        settings.kafka.high_priority_topic(),
    ] {
        assert_eq!(
            retention_ms(brokers, &topic).await,
            notifications_retention_ms,
            "{topic}"
        );
    }
}

/// 0, the default: the status events keep what the notifications keep.
#[tokio::test]
async fn by_default_the_status_events_topic_keeps_what_the_notifications_topic_keeps() {
    let settings = fresh_settings(&env("HERALD_TEST_KAFKA_BROKERS")).await;
    assert_eq!(settings.status_events.retention_hours, 0);
    let brokers = &settings.kafka.brokers;
    assert_eq!(
        retention_ms(brokers, &settings.status_events.topic).await,
        retention_ms(brokers, &settings.kafka.topic).await
    );
}
