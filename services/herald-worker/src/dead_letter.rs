//! Deliveries that failed for good are produced to `{topic}.dead-letter` for operators: the
//! delivery, its notification and the last error, keyed by delivery id. The `failed` row in
//! PostgreSQL stays the record of truth; producing the letter is best effort, counted either way.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use herald_kafka::{HeraldProducer, ProducerRole};
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::metrics;
use crate::outcome::Outcome;
use herald_domain::ProviderId;

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Dead-letter batches being produced at once; beyond that a batch is only counted as unproduced.
const MAX_BATCHES_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: &'static str,
    pub provider: ProviderId,
    pub attempts: i32,
    pub error: String,
}

impl DeadLetter {
    pub fn from_outcome(outcome: &Outcome) -> DeadLetter {
        DeadLetter {
            delivery_id: outcome.attempt.id,
            notification_id: outcome.attempt.notification_id,
            tenant_id: outcome.tenant_id,
            user_id: outcome.user_id.clone(),
            channel: outcome.channel.as_str(),
            provider: outcome.attempt.provider,
            attempts: outcome.attempt.attempt,
            error: outcome.attempt.error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: HeraldProducer,
    topic: Arc<str>,
    in_flight: Arc<Semaphore>,
}

impl DeadLetters {
    pub fn new(producer: HeraldProducer, topic: &str) -> DeadLetters {
        DeadLetters {
            producer,
            topic: herald_domain::envelope::dead_letter_topic(topic).into(),
            in_flight: Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT)),
        }
    }

    /// Produces the letters concurrently, each bounded by its produce timeout, without holding up
    /// the caller.
    pub fn publish_in_background(&self, letters: Vec<DeadLetter>) {
        if letters.is_empty() {
            return;
        }
        let Ok(slot) = self.in_flight.clone().try_acquire_owned() else {
            metrics::DEAD_LETTERS_UNPRODUCED.inc_by(letters.len() as u64);
            tracing::warn!(
                count = letters.len(),
                "too many dead letters in flight; these stay in PostgreSQL only"
            );
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            join_all(letters.iter().map(|letter| this.publish(letter))).await;
            drop(slot);
        });
    }

    async fn publish(&self, letter: &DeadLetter) {
        let Ok(payload) = serde_json::to_vec(letter) else {
            return;
        };
        let key = letter.delivery_id.to_string();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        let outcome = self.producer.send(record, PRODUCE_TIMEOUT).await;
        ProducerRole::Worker.count_outcome(outcome.is_ok());
        match outcome {
            Ok(_) => metrics::DEAD_LETTERS.inc(),
            Err((error, _)) => {
                metrics::DEAD_LETTERS_UNPRODUCED.inc();
                tracing::warn!(delivery_id = %letter.delivery_id, %error, "dead letter not produced")
            }
        }
    }
}
