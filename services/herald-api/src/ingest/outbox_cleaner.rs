//! Deletes the outbox entries of published batches, many per statement.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{outbox, DatabaseConnection};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::UnpublishedGauge;

const MAX_IDS_PER_DELETE: usize = 1000;
const DELETE_LINGER: Duration = Duration::from_millis(10);

/// The publisher's side: reports published batches. If the cleaner is behind, the report is
/// dropped: the relay will publish that batch again (at least once) and delete it then.
#[derive(Clone)]
pub struct OutboxCleaner {
    sender: mpsc::Sender<Uuid>,
}

impl OutboxCleaner {
    pub fn new(capacity: usize) -> (OutboxCleaner, mpsc::Receiver<Uuid>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (OutboxCleaner { sender }, receiver)
    }

    pub fn batch_published(&self, outbox_batch_id: Uuid) {
        if self.sender.try_send(outbox_batch_id).is_err() {
            tracing::debug!(%outbox_batch_id, "outbox cleaner busy; the relay will handle the batch");
        }
    }
}

/// Runs until every `OutboxCleaner` is dropped and the queue is drained.
pub async fn run_outbox_cleaner(
    mut published: mpsc::Receiver<Uuid>,
    database: DatabaseConnection,
    unpublished: Arc<UnpublishedGauge>,
) {
    let mut batch_ids = Vec::with_capacity(MAX_IDS_PER_DELETE);
    while let Some(first) = published.recv().await {
        batch_ids.push(first);
        let deadline = tokio::time::Instant::now() + DELETE_LINGER;
        while batch_ids.len() < MAX_IDS_PER_DELETE {
            match tokio::time::timeout_at(deadline, published.recv()).await {
                Ok(Some(batch_id)) => batch_ids.push(batch_id),
                _ => break,
            }
        }
        match outbox::delete_batches(&database, &batch_ids).await {
            Ok(deleted_notifications) => unpublished.subtract(deleted_notifications),
            Err(error) => {
                tracing::warn!(error = %error, "deleting published outbox batches failed; the relay will re-publish them")
            }
        }
        batch_ids.clear();
    }
}
