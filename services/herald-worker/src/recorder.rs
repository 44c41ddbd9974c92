//! The recorder (docs/DESIGN.md, "Recording outcomes"): writes the outcomes of provider calls in
//! batches. A failed write keeps the outcomes and retries until they are written: the outcome of a
//! call that happened is never forgotten while the worker lives. While it retries it reads nothing
//! new, so the lanes stop sending once its channel is full: backpressure, bounded memory.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald_domain::DeliveryStatus;
use herald_store::deliveries::{self, DeliveryKey, RecordedAttempt};
use herald_store::Database;
use herald_telemetry::supervise::catch_panic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::metrics;
use crate::outcome::Outcome;

/// Outcomes written per transaction, at most.
const MAX_OUTCOMES_PER_WRITE: usize = 1000;
/// How long the recorder waits for more outcomes before writing.
const LINGER: Duration = Duration::from_millis(5);
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_RETRY_PAUSE: Duration = Duration::from_secs(5);

pub struct Message(MessageKind);

enum MessageKind {
    /// A send batch of this many deliveries was handed to the lanes: once that many outcomes of it
    /// are recorded (or released), its `send_batches` row can go.
    Expect {
        send_batch: Uuid,
        deliveries: usize,
    },
    Outcome(Box<Outcome>),
}

#[derive(Clone)]
pub struct RecorderHandle {
    sender: mpsc::Sender<Message>,
}

impl RecorderHandle {
    /// Call before handing the batch's deliveries to the lanes.
    pub async fn expect(&self, send_batch: Uuid, deliveries: usize) {
        if deliveries > 0 {
            let _ = self
                .sender
                .send(Message(MessageKind::Expect {
                    send_batch,
                    deliveries,
                }))
                .await;
        }
    }

    /// Waits while the recorder is full (backpressure on the lanes).
    pub async fn submit(&self, outcome: Outcome) {
        let message = Message(MessageKind::Outcome(Box::new(outcome)));
        if self.sender.send(message).await.is_err() {
            tracing::error!(
                "the recorder stopped before an outcome was written; the delivery is in doubt"
            );
        }
    }
}

/// Send batches whose outcomes are not all recorded: what the recorder knows when it stops.
pub type Outstanding = HashMap<Uuid, usize>;

/// What the recorder reads; give it to [`run_recorder`].
pub struct RecorderInbox(mpsc::Receiver<Message>);

pub fn start(capacity: usize) -> (RecorderHandle, RecorderInbox) {
    let (sender, receiver) = mpsc::channel(capacity);
    (RecorderHandle { sender }, RecorderInbox(receiver))
}

/// Writes outcomes until every handle is dropped or `finish` is cancelled (once nothing more can
/// arrive); returns the send batches still outstanding.
pub async fn run_recorder(
    database: Database,
    dead_letters: DeadLetters,
    RecorderInbox(mut messages): RecorderInbox,
    finish: CancellationToken,
) -> Outstanding {
    let mut outstanding: Outstanding = HashMap::new();
    let mut pending: Vec<Outcome> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            message = messages.recv() => message,
            _ = finish.cancelled() => None,
        };
        let Some(first) = first else {
            while let Ok(message) = messages.try_recv() {
                accept(message, &mut outstanding, &mut pending);
            }
            break;
        };
        accept(first, &mut outstanding, &mut pending);
        let deadline = tokio::time::Instant::now() + LINGER;
        while pending.len() < MAX_OUTCOMES_PER_WRITE {
            match tokio::time::timeout_at(deadline, messages.recv()).await {
                Ok(Some(message)) => accept(message, &mut outstanding, &mut pending),
                _ => break,
            }
        }
        write_until_done(&database, &dead_letters, &mut outstanding, &mut pending).await;
    }
    write_until_done(&database, &dead_letters, &mut outstanding, &mut pending).await;
    outstanding
}

fn accept(message: Message, outstanding: &mut Outstanding, pending: &mut Vec<Outcome>) {
    match message.0 {
        MessageKind::Expect {
            send_batch,
            deliveries,
        } => *outstanding.entry(send_batch).or_default() += deliveries,
        MessageKind::Outcome(outcome) => pending.push(*outcome),
    }
    metrics::RECORD_PENDING.set(pending.len() as i64);
}

async fn write_until_done(
    database: &Database,
    dead_letters: &DeadLetters,
    outstanding: &mut Outstanding,
    pending: &mut Vec<Outcome>,
) {
    let mut pause = FIRST_RETRY_PAUSE;
    while let Some(session) = pending.first().map(|outcome| outcome.session) {
        // One transaction per session the outcomes were claimed under (almost always one).
        let (of_session, others): (Vec<Outcome>, Vec<Outcome>) = pending
            .drain(..)
            .partition(|outcome| outcome.session == session);
        // A panic while writing must not lose the outcomes: it counts as a failed write.
        let written = catch_panic(
            "record_outcomes",
            write(database, session, outstanding, &of_session),
        )
        .await
        .unwrap_or_else(|panic| {
            Err(herald_store::StoreError::Unavailable(format!(
                "writing outcomes panicked: {panic}"
            )))
        });
        match written {
            Ok(failed) => {
                dead_letters.publish_in_background(failed);
                *pending = others;
                pause = FIRST_RETRY_PAUSE;
            }
            Err(error) => {
                metrics::RECORD_FAILURES.inc();
                tracing::warn!(%error, outcomes = of_session.len(), ?pause, "writing outcomes failed; keeping them and retrying");
                *pending = of_session;
                pending.extend(others);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_RETRY_PAUSE);
            }
        }
        metrics::RECORD_PENDING.set(pending.len() as i64);
    }
}

/// Writes the outcomes of one session in one transaction. Returns the dead letters to produce
/// (deliveries this write made `failed`).
async fn write(
    database: &Database,
    session: Uuid,
    outstanding: &mut Outstanding,
    outcomes: &[Outcome],
) -> Result<Vec<DeadLetter>, herald_store::StoreError> {
    let mut per_batch: HashMap<Uuid, usize> = HashMap::new();
    for outcome in outcomes {
        *per_batch.entry(outcome.send_batch).or_default() += 1;
    }
    // Complete: every expected outcome of the batch is in this write.
    let completed: Vec<Uuid> = per_batch
        .iter()
        .filter(|(batch, count)| outstanding.get(batch) == Some(count))
        .map(|(batch, _)| *batch)
        .collect();
    let attempts: Vec<RecordedAttempt> = outcomes
        .iter()
        .map(|outcome| outcome.attempt.clone())
        .collect();
    let summary = deliveries::record(database, session, &attempts, &completed).await?;
    for (batch, count) in per_batch {
        if let Some(left) = outstanding.get_mut(&batch) {
            *left = left.saturating_sub(count);
            if *left == 0 {
                outstanding.remove(&batch);
            }
        }
    }
    let applied: HashSet<DeliveryKey> = summary.applied.into_iter().collect();
    if applied.len() < outcomes.len() {
        tracing::warn!(
            session = %session,
            stale = outcomes.len() - applied.len(),
            "outcomes of deliveries taken over by another session were kept as attempts only"
        );
    }
    Ok(outcomes
        .iter()
        .filter(|outcome| outcome.attempt.status == DeliveryStatus::Failed)
        .filter(|outcome| {
            applied.contains(&DeliveryKey {
                notification_id: outcome.attempt.notification_id,
                id: outcome.attempt.id,
            })
        })
        .map(DeadLetter::from_outcome)
        .collect())
}
