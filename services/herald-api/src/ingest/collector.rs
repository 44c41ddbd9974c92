//! Group commit: collect submissions into batches (by size or linger time), write each batch in
//! one statement, answer the waiting handlers, then hand the batch to the publisher.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_store::notifications::{self, NewNotification};
use herald_store::DatabaseConnection;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::outgoing::OutgoingNotification;
use super::{CommitOutcome, IngestError, Publisher, Submission, UnpublishedGauge};
use crate::metrics;

pub struct CollectorSettings {
    pub max_batch_rows: usize,
    pub linger: Duration,
    pub max_concurrent_writes: usize,
}

/// Runs until `shutdown` is cancelled, then commits what is already queued and waits for every
/// write in flight.
pub async fn run_collector(
    mut submissions: mpsc::Receiver<Submission>,
    settings: CollectorSettings,
    database: DatabaseConnection,
    publisher: Publisher,
    unpublished: Arc<UnpublishedGauge>,
    shutdown: CancellationToken,
) {
    let write_slots = Arc::new(Semaphore::new(settings.max_concurrent_writes));
    loop {
        let first = tokio::select! {
            biased;
            received = submissions.recv() => match received {
                Some(submission) => submission,
                None => break,
            },
            _ = shutdown.cancelled() => {
                // Refuse new submissions, but commit those already accepted into the queue.
                submissions.close();
                continue;
            }
        };
        let batch = collect_batch(first, &mut submissions, &settings).await;
        let Ok(write_slot) = write_slots.clone().acquire_owned().await else {
            break;
        };
        let database = database.clone();
        let publisher = publisher.clone();
        let unpublished = unpublished.clone();
        tokio::spawn(async move {
            write_batch(batch, &database, &publisher, &unpublished).await;
            drop(write_slot);
        });
    }
    // Every slot free again means every write finished.
    let _all_writes_done = write_slots
        .acquire_many(settings.max_concurrent_writes as u32)
        .await;
}

async fn collect_batch(
    first: Submission,
    submissions: &mut mpsc::Receiver<Submission>,
    settings: &CollectorSettings,
) -> Vec<Submission> {
    let mut rows = first.notifications.len();
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + settings.linger;
    while rows < settings.max_batch_rows {
        let next = match submissions.try_recv() {
            Ok(submission) => Some(submission),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) => {
                tokio::time::timeout_at(deadline, submissions.recv())
                    .await
                    .ok()
                    .flatten()
            }
        };
        let Some(submission) = next else { break };
        rows += submission.notifications.len();
        batch.push(submission);
    }
    batch
}

async fn write_batch(
    batch: Vec<Submission>,
    database: &DatabaseConnection,
    publisher: &Publisher,
    unpublished: &UnpublishedGauge,
) {
    let started = Instant::now();
    let outbox_batch_id = Uuid::now_v7();
    let rows: Vec<NewNotification> = batch
        .iter()
        .flat_map(|submission| &submission.notifications)
        .map(|prepared| NewNotification {
            id: prepared.id,
            tenant_id: prepared.tenant_id,
            notification: &prepared.notification,
            status: prepared.status,
            request_hash: prepared.request_hash,
            created_at: prepared.accepted_at,
        })
        .collect();
    metrics::INGEST_BATCH_ROWS.observe(rows.len() as f64);

    let committed = commit_and_resolve(database, &rows, outbox_batch_id).await;
    drop(rows);
    metrics::INGEST_COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
    let outcomes = match committed {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::error!(error = ?error, "commit of an ingest batch failed");
            metrics::INGEST_REJECTED
                .with_label_values(&["commit_failed"])
                .inc();
            let error = Arc::new(error);
            for submission in batch {
                let _ = submission
                    .reply
                    .send(Err(IngestError::CommitFailed(error.clone())));
            }
            return;
        }
    };

    // Split the outcomes per submission; take the committed notifications to publish.
    let mut outcomes = outcomes.into_iter();
    let mut to_publish = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());
    for submission in batch {
        let submission_outcomes: Vec<CommitOutcome> = outcomes
            .by_ref()
            .take(submission.notifications.len())
            .collect();
        for (prepared, outcome) in submission
            .notifications
            .into_iter()
            .zip(&submission_outcomes)
        {
            if matches!(
                outcome,
                CommitOutcome::Created {
                    status: "accepted",
                    ..
                }
            ) {
                to_publish.push(OutgoingNotification::from(prepared));
            }
        }
        replies.push((submission.reply, submission_outcomes));
    }
    // Hand over to the publisher before answering: a client's next request then always enters
    // the producer after this one (per-recipient order).
    if !to_publish.is_empty() {
        unpublished.add(to_publish.len() as u64);
        publisher.publish_fast_path(outbox_batch_id, to_publish);
    }
    for (reply, submission_outcomes) in replies {
        // A handler that gave up waiting is not an error: the batch is committed regardless.
        let _ = reply.send(Ok(submission_outcomes));
    }
}

/// Inserts the rows and turns the result into one outcome per row, resolving idempotency-key
/// conflicts against the stored requests.
async fn commit_and_resolve(
    database: &DatabaseConnection,
    rows: &[NewNotification<'_>],
    outbox_batch_id: Uuid,
) -> anyhow::Result<Vec<CommitOutcome>> {
    let inserted: HashSet<Uuid> = notifications::insert_batch(database, rows, outbox_batch_id)
        .await?
        .into_iter()
        .collect();
    let conflicting_keys: Vec<(Uuid, &str)> = rows
        .iter()
        .filter(|row| !inserted.contains(&row.id))
        .filter_map(|row| Some((row.tenant_id, row.notification.idempotency_key.as_deref()?)))
        .collect();
    let holders: HashMap<(Uuid, String), notifications::IdempotencyHolder> =
        if conflicting_keys.is_empty() {
            HashMap::new()
        } else {
            notifications::find_idempotency_holders(database, &conflicting_keys)
                .await?
                .into_iter()
                .map(|holder| ((holder.tenant_id, holder.idempotency_key.clone()), holder))
                .collect()
        };
    rows.iter()
        .map(|row| {
            if inserted.contains(&row.id) {
                return Ok(CommitOutcome::Created {
                    id: row.id,
                    status: row.status,
                });
            }
            let key = row.notification.idempotency_key.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "notification {} without idempotency key was not inserted",
                    row.id
                )
            })?;
            let holder = holders.get(&(row.tenant_id, key)).ok_or_else(|| {
                anyhow::anyhow!(
                    "idempotency key of {} conflicts, but no holder was found",
                    row.id
                )
            })?;
            Ok(if holder.request_hash == row.request_hash {
                CommitOutcome::AlreadyAccepted {
                    id: holder.id,
                    status: holder.status.clone(),
                }
            } else {
                CommitOutcome::IdempotencyConflict {
                    existing_id: holder.id,
                }
            })
        })
        .collect()
}
