//! Group commit: collect submissions into batches (by size or linger time), write each batch in
//! one statement, answer the waiting handlers, then hand the batch to the publisher.
//!
//! A batch that PostgreSQL refuses for a reason tied to its rows is bisected, so that only the
//! guilty rows are refused and every other submission of the batch, whatever its tenant, commits.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_domain::{AcceptedNotification, NotificationStatus};
use herald_store::notifications::{self, PublishableNotification};
use herald_store::{Database, StoreError};
use herald_telemetry::supervise::catch_panic;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{CommitOutcome, OutboxBacklog, Publisher, Submission};
use crate::metrics;

pub struct CollectorSettings {
    pub max_batch_rows: usize,
    pub max_batch_bytes: usize,
    pub linger: Duration,
    pub max_concurrent_writes: usize,
}

/// Runs until `shutdown` is cancelled, then commits what is already queued and waits for every
/// write in flight.
pub async fn run_collector(
    mut submissions: mpsc::Receiver<Submission>,
    settings: CollectorSettings,
    database: Database,
    publisher: Publisher,
    backlog: Arc<OutboxBacklog>,
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
            _ = shutdown.cancelled(), if !submissions.is_closed() => {
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
        let backlog = backlog.clone();
        tokio::spawn(async move {
            // Counted and logged; the batch's handlers then answer 503 and their clients retry.
            let _ = catch_panic(
                "group_commit",
                write_batch(batch, &database, &publisher, &backlog),
            )
            .await;
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
    let mut bytes = first.stored_bytes();
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + settings.linger;
    while rows < settings.max_batch_rows && bytes < settings.max_batch_bytes {
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
        bytes += submission.stored_bytes();
        batch.push(submission);
    }
    batch
}

/// A part of a batch that committed as one statement, with its outbox entry.
struct CommittedPart {
    outbox_batch_id: Uuid,
    /// Indexes (into the batch's rows) of the notifications the part put into the outbox.
    published_rows: Vec<usize>,
}

async fn write_batch(
    batch: Vec<Submission>,
    database: &Database,
    publisher: &Publisher,
    backlog: &OutboxBacklog,
) {
    let started = Instant::now();
    let accepted: Vec<&AcceptedNotification> = batch
        .iter()
        .flat_map(|submission| &submission.notifications)
        .collect();
    metrics::INGEST_BATCH_ROWS.observe(accepted.len() as f64);
    let all_rows: Vec<usize> = (0..accepted.len()).collect();
    let mut outcomes: Vec<Option<CommitOutcome>> = vec![None; accepted.len()];
    let mut parts = Vec::new();
    commit_bisecting(
        database,
        &accepted,
        all_rows,
        TIMEOUT_BISECTIONS,
        &mut outcomes,
        &mut parts,
    )
    .instrument(commit_batch_span(&batch, accepted.len()))
    .await;
    metrics::INGEST_COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());

    // Hand over to the publisher before answering: a client's next request then always enters
    // the producer after this one (per-recipient order, see docs/DESIGN.md).
    for part in parts {
        let to_publish: Vec<PublishableNotification> = part
            .published_rows
            .iter()
            .map(|&row| PublishableNotification::from(accepted[row]))
            .collect();
        backlog.committed(to_publish.len() as u64);
        publisher.publish_fast_path(part.outbox_batch_id, to_publish);
    }
    drop(accepted);
    let mut outcomes = outcomes.into_iter().map(|outcome| {
        debug_assert!(outcome.is_some(), "every row has an outcome");
        outcome.unwrap_or(CommitOutcome::Undetermined)
    });
    for submission in batch {
        let submission_outcomes: Vec<CommitOutcome> = outcomes
            .by_ref()
            .take(submission.notifications.len())
            .collect();
        for outcome in &submission_outcomes {
            outcome.record_metric();
        }
        // A handler that gave up waiting is not an error: the batch is committed regardless.
        let _ = submission.reply.send(Ok(submission_outcomes));
    }
}

/// One span per commit batch, linked to the request of every submission in it (a batch serves many
/// traces, so it is the child of none of them). No span when nothing is exported.
fn commit_batch_span(batch: &[Submission], rows: usize) -> tracing::Span {
    if !herald_telemetry::traces::exporting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "commit_batch",
        otel.name = "herald.commit_batch",
        herald.batch.submissions = batch.len(),
        herald.batch.rows = rows,
        db.system.name = "postgresql",
    );
    for submission in batch {
        let trace_parent = submission
            .notifications
            .first()
            .and_then(|accepted| accepted.trace_parent.as_deref());
        herald_telemetry::traces::add_link(&span, trace_parent);
    }
    span
}

/// How many times a batch that ran into the statement timeout is halved: a timeout may come from
/// too many or too large rows, or from a slow database, where splitting again and again would only
/// multiply the wait.
const TIMEOUT_BISECTIONS: u32 = 2;

/// Commits `rows` (indexes into `accepted`) as one statement; if PostgreSQL refuses it for a reason
/// that may lie in the rows, commits each half on its own: down to single rows for refused data,
/// `timeout_bisections` times for statement timeouts.
fn commit_bisecting<'a>(
    database: &'a Database,
    accepted: &'a [&'a AcceptedNotification],
    rows: Vec<usize>,
    timeout_bisections: u32,
    outcomes: &'a mut Vec<Option<CommitOutcome>>,
    parts: &'a mut Vec<CommittedPart>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let outbox_batch_id = Uuid::now_v7();
        match commit_and_resolve(database, accepted, &rows, outbox_batch_id).await {
            Ok(resolved) => {
                let mut published_rows = Vec::new();
                for (row, outcome) in rows.iter().zip(resolved) {
                    if matches!(
                        outcome,
                        CommitOutcome::Created {
                            status: NotificationStatus::Accepted,
                            ..
                        }
                    ) {
                        published_rows.push(*row);
                    }
                    outcomes[*row] = Some(outcome);
                }
                if !published_rows.is_empty() {
                    parts.push(CommittedPart {
                        outbox_batch_id,
                        published_rows,
                    });
                }
            }
            Err(error)
                if rows.len() > 1
                    && (matches!(error, StoreError::Refused { .. })
                        || (matches!(error, StoreError::StatementTimeout)
                            && timeout_bisections > 0)) =>
            {
                metrics::INGEST_BISECTIONS.inc();
                tracing::warn!(rows = rows.len(), %error, "commit batch refused; bisecting it");
                let timeout_bisections = match error {
                    StoreError::StatementTimeout => timeout_bisections - 1,
                    _ => timeout_bisections,
                };
                let mut first_half = rows;
                let second_half = first_half.split_off(first_half.len() / 2);
                commit_bisecting(
                    database,
                    accepted,
                    first_half,
                    timeout_bisections,
                    outcomes,
                    parts,
                )
                .await;
                commit_bisecting(
                    database,
                    accepted,
                    second_half,
                    timeout_bisections,
                    outcomes,
                    parts,
                )
                .await;
            }
            Err(error) => {
                let outcome = match &error {
                    StoreError::Refused { message, .. } => {
                        tracing::warn!(notification_id = %accepted[rows[0]].id, %error, "the database refused a notification");
                        CommitOutcome::Refused {
                            reason: message.clone(),
                        }
                    }
                    StoreError::StatementTimeout => CommitOutcome::Unavailable {
                        reason: "storing this notification timed out".into(),
                    },
                    StoreError::Unavailable(reason) => {
                        tracing::warn!(%reason, rows = rows.len(), "commit failed: database unavailable");
                        CommitOutcome::Unavailable {
                            reason: "the database is unavailable".into(),
                        }
                    }
                    StoreError::Other(_) => {
                        tracing::error!(error = ?error, rows = rows.len(), "commit of an ingest batch failed");
                        CommitOutcome::Unavailable {
                            reason: "the commit failed".into(),
                        }
                    }
                };
                for row in rows {
                    outcomes[row] = Some(outcome.clone());
                }
            }
        }
    })
}

/// Inserts the rows and turns the result into one outcome per row, resolving idempotency-key
/// conflicts against the stored requests. A failed look-up affects only the conflicting rows: the
/// inserted ones are committed, whatever happens next.
async fn commit_and_resolve(
    database: &Database,
    accepted: &[&AcceptedNotification],
    rows: &[usize],
    outbox_batch_id: Uuid,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let new_rows: Vec<&AcceptedNotification> = rows.iter().map(|&row| accepted[row]).collect();
    let inserted: HashSet<Uuid> = notifications::insert_batch(database, &new_rows, outbox_batch_id)
        .await?
        .into_iter()
        .collect();
    let conflicting_keys: Vec<(Uuid, &str)> = new_rows
        .iter()
        .filter(|row| !inserted.contains(&row.id))
        .filter_map(|row| Some((row.tenant_id, row.notification.idempotency_key.as_deref()?)))
        .collect();
    let holders = if conflicting_keys.is_empty() {
        Ok(HashMap::new())
    } else {
        notifications::find_idempotency_holders(database, &conflicting_keys)
            .await
            .map(|holders| {
                holders
                    .into_iter()
                    .map(|holder| ((holder.tenant_id, holder.key.clone()), holder))
                    .collect::<HashMap<_, _>>()
            })
    };
    if let Err(error) = &holders {
        tracing::warn!(%error, "looking up idempotency keys after a commit failed");
    }
    Ok(new_rows
        .iter()
        .map(|row| {
            if inserted.contains(&row.id) {
                return CommitOutcome::Created {
                    id: row.id,
                    status: row.status,
                };
            }
            let Some(key) = row.notification.idempotency_key.as_ref() else {
                // Only a key conflict keeps a row out; anything else is a bug worth hearing about.
                tracing::error!(notification_id = %row.id, "a notification without idempotency key was not inserted");
                return CommitOutcome::Undetermined;
            };
            let Ok(holders) = &holders else {
                return CommitOutcome::Undetermined;
            };
            match holders.get(&(row.tenant_id, key.clone())) {
                Some(holder) if holder.request_hash == row.request_hash => {
                    CommitOutcome::AlreadyAccepted {
                        id: holder.notification_id,
                        status: holder.status(),
                    }
                }
                Some(holder) => CommitOutcome::IdempotencyConflict {
                    existing_id: holder.notification_id,
                },
                // The holder expired between the insert and the look-up: a retry will claim it.
                None => CommitOutcome::Undetermined,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use herald_domain::{Channel, Priority, ValidatedNotification};
    use tokio::sync::oneshot;

    use super::*;

    fn submission(body_bytes: usize) -> Submission {
        let notification = ValidatedNotification {
            user_ids: vec!["u1".into()],
            group_ids: Vec::new(),
            channels: vec![Channel::Sms],
            subject: None,
            body: "x".repeat(body_bytes),
            template: None,
            data: serde_json::Map::new(),
            priority: Priority::Normal,
            category: None,
            scheduled_for: None,
            idempotency_key: None,
            data_bytes: 2,
        };
        let (reply, _) = oneshot::channel();
        Submission {
            notifications: vec![AcceptedNotification::new(
                Uuid::now_v7(),
                notification,
                Utc::now(),
                None,
            )],
            reply,
        }
    }

    #[tokio::test]
    async fn a_commit_batch_stops_at_its_byte_bound_as_well_as_its_row_bound() {
        let settings = CollectorSettings {
            max_batch_rows: 1000,
            max_batch_bytes: 100_000,
            linger: Duration::from_millis(50),
            max_concurrent_writes: 1,
        };
        let (sender, mut queue) = mpsc::channel(100);
        for _ in 0..10 {
            sender.try_send(submission(40_000)).ok().unwrap();
        }
        let first = queue.recv().await.unwrap();
        let batch = collect_batch(first, &mut queue, &settings).await;
        assert_eq!(batch.len(), 3, "40 KB each: the third reaches 100 KB");

        let rows_bound = CollectorSettings {
            max_batch_rows: 2,
            ..settings
        };
        let first = queue.recv().await.unwrap();
        let batch = collect_batch(first, &mut queue, &rows_bound).await;
        assert_eq!(batch.len(), 2);
    }
}
