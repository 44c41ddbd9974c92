//! Deliveries that failed for good are produced to `{topic}.dead-letter` for operators: the
//! delivery, its notification and the last error, keyed by delivery id.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use uuid::Uuid;

use crate::metrics;

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
pub struct DeadLetter<'a> {
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: &'a str,
    pub channel: &'a str,
    pub attempts: i32,
    pub error: &'a str,
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, topic: &str) -> DeadLetters {
        DeadLetters {
            producer,
            topic: herald_domain::envelope::dead_letter_topic(topic),
        }
    }

    /// Produces the dead letter; a failure is logged (the delivery's `failed` row remains the
    /// record of truth).
    pub async fn publish(&self, letter: &DeadLetter<'_>) {
        let payload = serde_json::to_vec(letter).expect("a dead letter always serializes");
        let key = letter.delivery_id.to_string();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        match self.producer.send(record, PRODUCE_TIMEOUT).await {
            Ok(_) => metrics::DEAD_LETTERS.inc(),
            Err((error, _)) => {
                tracing::warn!(delivery_id = %letter.delivery_id, %error, "dead letter not produced")
            }
        }
    }
}
