//! The outbox relay: publishes what the fast path did not (broker down, process killed), releases
//! due scheduled notifications, and resynchronises the unpublished count.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{notifications, outbox, DatabaseConnection};
use tokio_util::sync::CancellationToken;

use super::outgoing::OutgoingNotification;
use super::{Publisher, UnpublishedGauge};
use crate::metrics;

pub struct RelaySettings {
    pub interval: Duration,
    pub grace: Duration,
    pub lease: Duration,
    pub batch_limit: u64,
}

/// Most due scheduled notifications released per pass.
const SCHEDULED_RELEASE_LIMIT: u64 = 5000;

pub async fn run_relay(
    settings: RelaySettings,
    database: DatabaseConnection,
    publisher: Publisher,
    unpublished: Arc<UnpublishedGauge>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let pass = relay_pass(&settings, &database, &publisher, &unpublished);
        tokio::select! {
            result = pass => if let Err(error) = result {
                tracing::warn!(error = ?error, "outbox relay pass failed");
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn relay_pass(
    settings: &RelaySettings,
    database: &DatabaseConnection,
    publisher: &Publisher,
    unpublished: &UnpublishedGauge,
) -> anyhow::Result<()> {
    let released =
        outbox::release_due_scheduled(database, settings.grace, SCHEDULED_RELEASE_LIMIT).await?;
    if released > 0 {
        tracing::info!(released, "released due scheduled notifications");
    }
    loop {
        let batches = outbox::lease_stale_batches(
            database,
            settings.grace,
            settings.lease,
            settings.batch_limit,
        )
        .await?;
        if batches.is_empty() {
            break;
        }
        for batch in batches {
            let rows = notifications::load_by_ids(database, &batch.notification_ids).await?;
            let outgoing: Vec<OutgoingNotification> = rows.into_iter().map(Into::into).collect();
            if let Err(error) = publisher.publish(&outgoing).await {
                // The broker is still away: stop here, the lease expires and a later pass retries.
                metrics::KAFKA_PUBLISH
                    .with_label_values(&["relay", "failed"])
                    .inc();
                tracing::warn!(outbox_batch_id = %batch.id, error = %error, "relay could not publish");
                unpublished.set(outbox::count_unpublished(database).await?);
                return Ok(());
            }
            metrics::KAFKA_PUBLISH
                .with_label_values(&["relay", "ok"])
                .inc();
            metrics::RELAY_REPUBLISHED.inc_by(outgoing.len() as u64);
            outbox::delete_batches(database, &[batch.id]).await?;
        }
    }
    unpublished.set(outbox::count_unpublished(database).await?);
    Ok(())
}
