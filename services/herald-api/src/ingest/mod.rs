//! The ingest path (docs/DESIGN.md): handlers submit validated notifications to the commit queue;
//! the collector group-commits them to PostgreSQL with their outbox entry; the publisher produces
//! them to Kafka; the relay re-publishes what the fast path could not.

mod collector;
mod outbox_cleaner;
mod outgoing;
mod publisher;
mod relay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_domain::ValidatedNotification;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use collector::{run_collector, CollectorSettings};
pub use outbox_cleaner::{run_outbox_cleaner, OutboxCleaner};
pub use publisher::Publisher;
pub use relay::{run_relay, RelaySettings};

use crate::metrics;

/// A validated notification with its identity, ready to be committed.
pub struct PreparedNotification {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub notification: ValidatedNotification,
    pub request_hash: [u8; 32],
    pub status: &'static str,
    pub accepted_at: DateTime<Utc>,
}

impl PreparedNotification {
    pub fn new(tenant_id: Uuid, notification: ValidatedNotification, now: DateTime<Utc>) -> Self {
        PreparedNotification {
            id: Uuid::now_v7(),
            tenant_id,
            request_hash: notification.request_hash(),
            status: notification.initial_status(now),
            notification,
            accepted_at: now,
        }
    }
}

/// What became of one submitted notification once its batch committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Stored now, with this id and status.
    Created { id: Uuid, status: &'static str },
    /// Its idempotency key already named an identical request: that one's id.
    AlreadyAccepted { id: Uuid, status: String },
    /// Its idempotency key already named a different request.
    IdempotencyConflict { existing_id: Uuid },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the commit queue is full")]
    QueueFull,
    #[error("too many notifications are waiting for the broker")]
    OutboxFull,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the commit failed")]
    CommitFailed(#[source] Arc<anyhow::Error>),
}

/// A group of notifications from one request; they commit in the same batch.
pub struct Submission {
    pub notifications: Vec<PreparedNotification>,
    pub reply: oneshot::Sender<Result<Vec<CommitOutcome>, IngestError>>,
}

/// Notifications committed but not yet acknowledged by the broker (this replica's view,
/// resynchronised with the outbox table by the relay).
#[derive(Default)]
pub struct UnpublishedGauge(AtomicU64);

impl UnpublishedGauge {
    pub fn add(&self, count: u64) {
        let now = self.0.fetch_add(count, Ordering::Relaxed) + count;
        metrics::OUTBOX_UNPUBLISHED.set(now as i64);
    }

    pub fn subtract(&self, count: u64) {
        let previous = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |value| {
                Some(value.saturating_sub(count))
            })
            .unwrap_or(0);
        metrics::OUTBOX_UNPUBLISHED.set(previous.saturating_sub(count) as i64);
    }

    pub fn set(&self, count: u64) {
        self.0.store(count, Ordering::Relaxed);
        metrics::OUTBOX_UNPUBLISHED.set(count as i64);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The handlers' side of the ingest path.
#[derive(Clone)]
pub struct IngestHandle {
    sender: mpsc::Sender<Submission>,
    unpublished: Arc<UnpublishedGauge>,
    max_unpublished: u64,
    commit_timeout: Duration,
}

impl IngestHandle {
    pub fn new(
        sender: mpsc::Sender<Submission>,
        unpublished: Arc<UnpublishedGauge>,
        max_unpublished: u64,
        commit_timeout: Duration,
    ) -> IngestHandle {
        IngestHandle {
            sender,
            unpublished,
            max_unpublished,
            commit_timeout,
        }
    }

    /// Commits the notifications durably; outcomes are in submission order. Never waits for room:
    /// a full queue or outbox is an immediate error (the API's 503).
    pub async fn commit(
        &self,
        notifications: Vec<PreparedNotification>,
    ) -> Result<Vec<CommitOutcome>, IngestError> {
        debug_assert!(!notifications.is_empty());
        if self.unpublished.get() >= self.max_unpublished {
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
            Err(_elapsed) => Err(IngestError::CommitFailed(Arc::new(anyhow::anyhow!(
                "no commit within {:?}",
                self.commit_timeout
            )))),
        }
    }
}

pub fn collector_settings(settings: &herald_config::IngestSettings) -> CollectorSettings {
    CollectorSettings {
        max_batch_rows: settings.max_batch_rows,
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
