//! The ingest path (docs/DESIGN.md): handlers submit validated notifications to the commit queue;
//! the collector group-commits them to PostgreSQL with their outbox entry; the publisher produces
//! them to Kafka; the relay re-publishes what the fast path could not; the scheduler releases due
//! scheduled notifications; maintenance keeps the tables bounded.

mod admission;
mod collector;
mod maintenance;
mod outbox_cleaner;
mod publisher;
mod relay;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use herald_domain::{AcceptedNotification, NotificationStatus};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use uuid::Uuid;

pub use admission::{OutboxBacklog, RequestBytes};
pub use collector::{run_collector, CollectorSettings};
pub use maintenance::{maintain_once, run_maintenance, MaintenanceSettings};
pub use outbox_cleaner::{run_outbox_cleaner, OutboxCleaner};
pub use publisher::{PublishReport, Publisher};
pub use relay::{run_relay, RelaySettings};
pub use scheduler::run_scheduler;

use crate::metrics;

/// What became of one submitted notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Stored now, with this id and status.
    Created {
        id: Uuid,
        status: NotificationStatus,
    },
    /// Its idempotency key already named an identical request: that one's id and current status.
    AlreadyAccepted {
        id: Uuid,
        status: NotificationStatus,
    },
    /// Its idempotency key already named a different request.
    IdempotencyConflict { existing_id: Uuid },
    /// Stored by nobody: PostgreSQL refused this submission's data (found by bisecting its batch).
    Refused { reason: String },
    /// Its idempotency key is held, but the holder could not be looked up; retrying is safe.
    Undetermined,
    /// Not stored: the database is unavailable or too slow; retrying is safe.
    Unavailable { reason: String },
}

impl CommitOutcome {
    /// Counts what became of one submitted notification.
    pub fn record_metric(&self) {
        use crate::metrics::{INGEST_REJECTED, NOTIFICATIONS_ACCEPTED};
        match self {
            CommitOutcome::Created { .. } => NOTIFICATIONS_ACCEPTED.inc(),
            CommitOutcome::AlreadyAccepted { .. } => {}
            CommitOutcome::IdempotencyConflict { .. } => INGEST_REJECTED
                .with_label_values(&["idempotency_conflict"])
                .inc(),
            CommitOutcome::Refused { .. } => INGEST_REJECTED
                .with_label_values(&["refused_by_database"])
                .inc(),
            CommitOutcome::Undetermined | CommitOutcome::Unavailable { .. } => {
                INGEST_REJECTED.with_label_values(&["unavailable"]).inc()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the commit queue is full")]
    QueueFull,
    #[error("too many notifications are waiting for the broker")]
    OutboxFull,
    #[error("too many request bytes are in progress")]
    BytesExhausted,
    #[error("too many request bytes of this client are in progress")]
    ClientBytesExhausted,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("storing the submission timed out")]
    CommitTimedOut,
}

/// A group of notifications from one request; they commit in the same batch (or, if the batch is
/// bisected, together in one part of it).
pub struct Submission {
    pub notifications: Vec<AcceptedNotification>,
    pub reply: oneshot::Sender<Result<Vec<CommitOutcome>, IngestError>>,
}

impl Submission {
    fn stored_bytes(&self) -> usize {
        self.notifications
            .iter()
            .map(|accepted| accepted.notification.stored_bytes())
            .sum()
    }
}

/// The handlers' side of the ingest path.
#[derive(Clone)]
pub struct IngestHandle {
    sender: mpsc::Sender<Submission>,
    backlog: Arc<OutboxBacklog>,
    max_unpublished: u64,
    commit_timeout: Duration,
}

impl IngestHandle {
    pub fn new(
        sender: mpsc::Sender<Submission>,
        backlog: Arc<OutboxBacklog>,
        max_unpublished: u64,
        commit_timeout: Duration,
    ) -> IngestHandle {
        IngestHandle {
            sender,
            backlog,
            max_unpublished,
            commit_timeout,
        }
    }

    /// Commits the notifications durably; outcomes are in submission order. Never waits for room:
    /// a full queue or outbox is an immediate error (the API's 503).
    pub async fn commit(
        &self,
        notifications: Vec<AcceptedNotification>,
    ) -> Result<Vec<CommitOutcome>, IngestError> {
        debug_assert!(!notifications.is_empty());
        if self.backlog.estimate() >= self.max_unpublished {
            metrics::INGEST_REJECTED
                .with_label_values(&["outbox_full"])
                .inc();
            return Err(IngestError::OutboxFull);
        }
        let (reply, outcome) = oneshot::channel();
        let submission = Submission {
            notifications,
            reply,
        };
        self.sender
            .try_send(submission)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::INGEST_REJECTED
                        .with_label_values(&["queue_full"])
                        .inc();
                    IngestError::QueueFull
                }
                mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
            })?;
        match tokio::time::timeout(self.commit_timeout, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_dropped)) => Err(IngestError::ShuttingDown),
            Err(_elapsed) => Err(IngestError::CommitTimedOut),
        }
    }
}

/// Held by a handler from before it reads its body until it answers: request bytes in progress,
/// in the whole budget and in its client's share.
pub struct BytesPermit {
    permit: OwnedSemaphorePermit,
    client: Option<admission::ClientShare>,
}

pub fn collector_settings(settings: &herald_config::IngestSettings) -> CollectorSettings {
    CollectorSettings {
        max_batch_rows: settings.max_batch_rows,
        max_batch_bytes: settings.max_batch_bytes,
        linger: Duration::from_millis(settings.linger_ms),
        max_concurrent_writes: settings.max_concurrent_writes,
    }
}

pub fn relay_settings(settings: &herald_config::OutboxSettings) -> RelaySettings {
    RelaySettings {
        interval: Duration::from_millis(settings.relay_interval_ms),
        grace: Duration::from_millis(settings.grace_ms),
        lease: Duration::from_millis(settings.lease_ms),
        batch_limit: settings.relay_batch_limit,
    }
}
