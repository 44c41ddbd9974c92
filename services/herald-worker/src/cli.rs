//! Operator commands of the worker: parked records.

use std::time::Duration;

use herald_config::Settings;
use herald_store::parked_records::{self, ParkedRecord};
use herald_store::Database;
use rdkafka::producer::FutureRecord;

/// Parked records not replayed yet, oldest first.
pub async fn parked(settings: &Settings, limit: u64) -> anyhow::Result<Vec<ParkedRecord>> {
    let database = Database::connect(&settings.database).await?;
    Ok(parked_records::pending(&database, limit).await?)
}

/// Produces parked records back to their topic (same key, same value) and marks them replayed;
/// returns how many. Run it once the cause is fixed: a record that still cannot be processed is
/// parked again.
pub async fn replay_parked(settings: &Settings, limit: u64) -> anyhow::Result<usize> {
    let database = Database::connect(&settings.database).await?;
    let producer = herald_kafka::create_producer(
        &settings.kafka,
        "herald-worker-replay",
        herald_kafka::ProducerRole::Worker,
    )?;
    let records = parked_records::pending(&database, limit).await?;
    let mut replayed = Vec::with_capacity(records.len());
    for record in &records {
        let mut produced =
            FutureRecord::to(&record.topic).payload(record.payload.as_deref().unwrap_or_default());
        if let Some(key) = record.record_key.as_deref() {
            produced = produced.key(key);
        }
        producer
            .send(produced, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| {
                anyhow::anyhow!("producing parked record {} failed: {error}", record.id)
            })?;
        replayed.push(record.id);
    }
    parked_records::mark_replayed(&database, &replayed).await?;
    Ok(replayed.len())
}
