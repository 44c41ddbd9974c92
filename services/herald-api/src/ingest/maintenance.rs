//! Keeps storage bounded: daily partitions made ahead and dropped after the retention, expired
//! idempotency keys deleted. Every replica runs it; PostgreSQL's advisory lock lets one at a time work.

use std::time::Duration;

use herald_store::{maintenance, notifications, Database};
use herald_telemetry::supervise::every;
use tokio_util::sync::CancellationToken;

use crate::metrics;

pub struct MaintenanceSettings {
    pub interval: Duration,
    pub retention_days: u32,
    pub premake_days: u32,
    pub idempotency_window: Duration,
}

const KEYS_PER_DELETE: u64 = 10_000;

pub async fn run_maintenance(
    settings: MaintenanceSettings,
    database: Database,
    shutdown: CancellationToken,
) {
    every(settings.interval, &shutdown, || {
        maintain_once(&settings, &database)
    })
    .await
}

pub async fn maintain_once(settings: &MaintenanceSettings, database: &Database) {
    let today = chrono::Utc::now().date_naive();
    match maintenance::maintain_partitions(
        database,
        today,
        settings.premake_days,
        settings.retention_days,
    )
    .await
    {
        Ok(report) if report.skipped => {}
        Ok(report) => {
            metrics::RETENTION_BLOCKED_DAYS.set(report.days_blocked.len() as i64);
            if report.partitions_created > 0 || !report.days_dropped.is_empty() {
                tracing::info!(created = report.partitions_created, dropped = ?report.days_dropped, "partitions maintained");
            }
            if !report.days_blocked.is_empty() {
                tracing::warn!(days = ?report.days_blocked, "days past the retention still hold unfinished notifications; not dropped");
            }
        }
        Err(error) => tracing::warn!(%error, "partition maintenance failed"),
    }
    loop {
        match notifications::expire_idempotency_keys(
            database,
            settings.idempotency_window,
            KEYS_PER_DELETE,
        )
        .await
        {
            Ok(deleted) if deleted == KEYS_PER_DELETE => continue,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, "expiring idempotency keys failed");
                break;
            }
        }
    }
}
