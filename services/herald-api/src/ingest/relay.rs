//! The outbox relay: publishes what the fast path did not (broker down, process killed, fast path
//! full), many batches at a time, renewing its lease while it works; and keeps the true outbox
//! backlog for admission control and the metrics.

use std::sync::Arc;
use std::time::Duration;

use herald_store::outbox::{self, LeasedBatch, ParkedRecord};
use herald_store::{notifications, Database, StoreError};
use herald_telemetry::supervise::every;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{OutboxBacklog, Publisher};
use crate::metrics;

pub struct RelaySettings {
    pub interval: Duration,
    pub grace: Duration,
    pub lease: Duration,
    /// Outbox batches leased per round.
    pub batch_limit: u64,
}

/// Records loaded and in flight at once while the relay publishes.
const RELAY_CHUNK_RECORDS: usize = 50_000;

pub async fn run_relay(
    settings: Arc<RelaySettings>,
    database: Database,
    publisher: Publisher,
    backlog: Arc<OutboxBacklog>,
    shutdown: CancellationToken,
) {
    // One owner per relay process: its leases can be renewed, and a second replica's cannot.
    let owner = Uuid::now_v7();
    every(settings.interval, &shutdown, || async {
        if let Err(error) = relay_pass(&settings, owner, &database, &publisher).await {
            tracing::warn!(%error, "outbox relay pass failed");
        }
        match outbox::backlog(&database).await {
            Ok(true_backlog) => backlog.refresh(true_backlog),
            Err(error) => tracing::warn!(%error, "reading the outbox backlog failed"),
        }
        match outbox::count_parked(&database).await {
            Ok(parked) => metrics::OUTBOX_PARKED_WAITING.set(parked as i64),
            Err(error) => tracing::debug!(%error, "counting parked records failed"),
        }
    })
    .await
}

/// Publishes leased batches round after round until none is stale or the broker fails.
async fn relay_pass(
    settings: &RelaySettings,
    owner: Uuid,
    database: &Database,
    publisher: &Publisher,
) -> Result<(), StoreError> {
    loop {
        let batches = outbox::lease_stale_batches(
            database,
            owner,
            settings.grace,
            settings.lease,
            settings.batch_limit,
        )
        .await?;
        if batches.is_empty() {
            return Ok(());
        }
        let renewal = tokio::spawn(renew_while_publishing(
            database.clone(),
            owner,
            batches.iter().map(|batch| batch.id).collect(),
            settings.lease,
        ));
        let round = publish_round(database, publisher, &batches).await;
        renewal.abort();
        let all_published = round?;
        if !all_published {
            // The broker is away: give the leases back so the next tick tries again.
            let ids: Vec<Uuid> = batches.iter().map(|batch| batch.id).collect();
            outbox::renew_leases(database, owner, &ids, Duration::ZERO).await?;
            return Ok(());
        }
    }
}

/// Publishes one round of leased batches, oldest first, each in chunks of at most
/// `RELAY_CHUNK_RECORDS` records (memory stays bounded whatever a notification's fan-out);
/// completes those fully published or parked. Stops at the first batch that fails. Returns whether
/// every batch completed.
async fn publish_round(
    database: &Database,
    publisher: &Publisher,
    batches: &[LeasedBatch],
) -> Result<bool, StoreError> {
    let mut completed = Vec::new();
    let mut parked: Vec<ParkedRecord> = Vec::new();
    for batch in batches {
        let mut failed = false;
        let mut published = 0;
        let mut after = None;
        loop {
            let chunk = notifications::load_publishable(
                database,
                &batch.notification_ids,
                after,
                RELAY_CHUNK_RECORDS,
            )
            .await?;
            let Some(last) = chunk.last() else { break };
            after = Some(last.id);
            published += chunk.len();
            let report = publisher
                .publish_batches(std::slice::from_ref(&chunk), RELAY_CHUNK_RECORDS)
                .await
                .pop()
                .unwrap_or_default();
            parked.extend(report.parked.iter().cloned());
            if let Some(failure) = report.transient_failure {
                tracing::warn!(outbox_batch_id = %batch.id, %failure, "relay could not publish");
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
        completed.push(batch.id);
        metrics::RELAY_REPUBLISHED.inc_by(published as u64);
    }
    let all_completed = completed.len() == batches.len();
    metrics::KAFKA_PUBLISH
        .with_label_values(&["relay", if all_completed { "ok" } else { "failed" }])
        .inc();
    outbox::complete_batches(database, &completed, &parked).await?;
    Ok(all_completed)
}

async fn renew_while_publishing(
    database: Database,
    owner: Uuid,
    batch_ids: Vec<Uuid>,
    lease: Duration,
) {
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = outbox::renew_leases(&database, owner, &batch_ids, lease).await {
            tracing::warn!(%error, "renewing the relay's outbox leases failed");
        }
    }
}
