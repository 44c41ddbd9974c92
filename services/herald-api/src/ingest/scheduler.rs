//! Releases due scheduled notifications into the outbox, in its own task: a long relay pass cannot
//! delay them.

use std::time::Duration;

use herald_store::{outbox, Database};
use herald_telemetry::supervise::every;
use tokio_util::sync::CancellationToken;

use crate::metrics;

const RELEASE_LIMIT: u64 = 5000;
const INTERVAL: Duration = Duration::from_secs(1);

pub async fn run_scheduler(database: Database, grace: Duration, shutdown: CancellationToken) {
    every(INTERVAL, &shutdown, || {
        release_due(&database, grace, &shutdown)
    })
    .await
}

async fn release_due(database: &Database, grace: Duration, shutdown: &CancellationToken) {
    loop {
        match outbox::release_due_scheduled(database, grace, RELEASE_LIMIT).await {
            Ok(released) => {
                if released > 0 {
                    metrics::SCHEDULED_RELEASED.inc_by(released);
                    tracing::info!(released, "released due scheduled notifications");
                }
                if released < RELEASE_LIMIT || shutdown.is_cancelled() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "releasing scheduled notifications failed");
                return;
            }
        }
    }
}
