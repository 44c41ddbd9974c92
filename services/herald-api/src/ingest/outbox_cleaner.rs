//! Completes the outbox entries of published fast-path batches, many per statement: deletes the
//! batches whose records are all acknowledged or parked, and parks the refused records.

use std::time::Duration;

use herald_store::outbox::{self, ParkedRecord};
use herald_store::Database;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::PublishReport;

const MAX_BATCHES_PER_STATEMENT: usize = 1000;
const LINGER: Duration = Duration::from_millis(10);

/// The publisher's side. If the cleaner is behind, a report is dropped: the relay publishes that
/// batch again (at least once) and completes it then.
#[derive(Clone)]
pub struct OutboxCleaner {
    sender: mpsc::Sender<(Uuid, PublishReport)>,
}

impl OutboxCleaner {
    pub fn new(capacity: usize) -> (OutboxCleaner, mpsc::Receiver<(Uuid, PublishReport)>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (OutboxCleaner { sender }, receiver)
    }

    pub fn report(&self, outbox_batch_id: Uuid, report: PublishReport) {
        let worth_a_statement = report.is_complete() || !report.parked.is_empty();
        if worth_a_statement && self.sender.try_send((outbox_batch_id, report)).is_err() {
            tracing::debug!(%outbox_batch_id, "outbox cleaner busy; the relay will handle the batch");
        }
    }
}

/// Runs until every `OutboxCleaner` is dropped and the queue is drained.
pub async fn run_outbox_cleaner(
    mut reports: mpsc::Receiver<(Uuid, PublishReport)>,
    database: Database,
) {
    let mut completed: Vec<Uuid> = Vec::with_capacity(MAX_BATCHES_PER_STATEMENT);
    let mut parked: Vec<ParkedRecord> = Vec::new();
    while let Some(first) = reports.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some((batch_id, report)) = next.take() {
            if report.is_complete() {
                completed.push(batch_id);
            }
            parked.extend(report.parked);
            if completed.len() >= MAX_BATCHES_PER_STATEMENT {
                break;
            }
            next = tokio::time::timeout_at(deadline, reports.recv())
                .await
                .ok()
                .flatten();
        }
        if let Err(error) = outbox::complete_batches(&database, &completed, &parked).await {
            tracing::warn!(%error, "completing published outbox batches failed; the relay will re-publish them");
        }
        completed.clear();
        parked.clear();
    }
}
