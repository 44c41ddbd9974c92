//! The sweeper: takes over the claims of dead worker sessions (the in-doubt set: queued again and
//! sent again with the same reference), moves deferred deliveries into the queue when their
//! recipients' quiet hours end, and keeps the parked-records and delivery-queue gauges current.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use herald_store::{deliveries, parked_records, queue_backlog};
use herald_telemetry::supervise::every;
use tokio_util::sync::CancellationToken;

use crate::context::WorkerContext;
use crate::metrics;

/// Send batches taken over per statement.
const TAKEOVER_LIMIT: u64 = 100;
/// Sweeps between two readings of the parked-records and delivery-queue gauges.
const GAUGE_REFRESH_EVERY: u32 = 10;

pub async fn run_sweeper(
    context: Arc<WorkerContext>,
    lease: Duration,
    interval: Duration,
    stop: CancellationToken,
) {
    let sweeps = AtomicU32::new(0);
    every(interval, &stop, || async {
        take_over_dead_sessions(&context, lease, &stop).await;
        release_due_deferred(&context, &stop).await;
        if sweeps
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(GAUGE_REFRESH_EVERY)
        {
            if let Ok(parked) = parked_records::count_pending(&context.database).await {
                metrics::PARKED_WAITING.set(parked as i64);
            }
            refresh_queue_backlog(&context).await;
        }
    })
    .await
}

/// The delivery queue's gauges, for the lanes' providers (a scaling signal: `queue_backlog.rs`).
async fn refresh_queue_backlog(context: &WorkerContext) {
    let providers: Vec<&str> = context
        .lanes
        .iter()
        .map(|lane| lane.provider().as_str())
        .collect();
    match queue_backlog::queue_backlog(&context.database, &providers).await {
        Ok(backlog) => {
            for provider in backlog {
                metrics::QUEUE_DUE
                    .with_label_values(&[&provider.provider])
                    .set(provider.due);
                metrics::QUEUE_OLDEST_DUE_AGE
                    .with_label_values(&[&provider.provider])
                    .set(provider.oldest_due_age_seconds as i64);
            }
        }
        Err(error) => tracing::warn!(%error, "reading the delivery queue's backlog failed"),
    }
}

/// Deferred deliveries moved into the queue per statement.
const DEFERRED_RELEASE_LIMIT: u64 = 1000;

/// Moves the deliveries whose recipients' quiet hours have ended into the queue (docs/DESIGN.md,
/// "Preferences"), and wakes the lanes' pumps if any moved.
async fn release_due_deferred(context: &WorkerContext, stop: &CancellationToken) {
    let mut released = 0;
    while !stop.is_cancelled() {
        match deliveries::release_due_deferred(&context.database, DEFERRED_RELEASE_LIMIT).await {
            Ok(moved) => {
                released += moved;
                if moved < DEFERRED_RELEASE_LIMIT {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "moving deferred deliveries into the queue failed");
                break;
            }
        }
    }
    if released > 0 {
        for lane in context.lanes.iter() {
            lane.note_queued_work();
        }
    }
}

async fn take_over_dead_sessions(
    context: &WorkerContext,
    lease: Duration,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        match deliveries::take_over_dead_sessions(&context.database, lease, TAKEOVER_LIMIT).await {
            Ok(0) => return,
            Ok(in_doubt) => {
                metrics::IN_DOUBT.inc_by(in_doubt);
                tracing::warn!(
                    in_doubt,
                    "took over deliveries of a dead worker session; sending them again"
                );
                for lane in context.lanes.iter() {
                    lane.note_queued_work();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "taking over dead sessions failed");
                return;
            }
        }
    }
}
