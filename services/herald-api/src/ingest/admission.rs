//! What the API admits: request bytes in progress (a budget in bytes, not requests), and room in the
//! outbox (the true backlog from PostgreSQL, plus what this replica committed since it was read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use herald_store::outbox::Backlog;
use tokio::sync::Semaphore;

use super::{BytesPermit, IngestError};
use crate::metrics;

/// The outbox backlog as admission control sees it.
#[derive(Default)]
pub struct OutboxBacklog {
    /// `sum(notification_count)` of the outbox at the last refresh (every replica's).
    last_read: AtomicU64,
    /// Notifications this replica committed into the outbox since then.
    added_since: AtomicU64,
}

impl OutboxBacklog {
    /// The relay read the true backlog.
    pub fn refresh(&self, backlog: Backlog) {
        self.last_read
            .store(backlog.notifications, Ordering::Relaxed);
        self.added_since.store(0, Ordering::Relaxed);
        metrics::OUTBOX_BACKLOG.set(backlog.notifications as i64);
        metrics::OUTBOX_OLDEST_AGE_SECONDS.set(backlog.oldest_age_seconds);
    }

    /// A commit added `count` notifications to the outbox.
    pub fn committed(&self, count: u64) {
        self.added_since.fetch_add(count, Ordering::Relaxed);
    }

    /// At most one refresh interval of this replica's commits above the truth, never drifting.
    pub fn estimate(&self) -> u64 {
        self.last_read.load(Ordering::Relaxed) + self.added_since.load(Ordering::Relaxed)
    }
}

/// The budget of request bytes held between reading a body and answering it.
#[derive(Clone)]
pub struct RequestBytes {
    budget: Arc<Semaphore>,
}

impl RequestBytes {
    pub fn new(max_bytes_in_flight: usize) -> RequestBytes {
        RequestBytes {
            budget: Arc::new(Semaphore::new(
                max_bytes_in_flight.min(Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Takes `bytes` from the budget without waiting; no room is a 503.
    pub fn take(&self, bytes: usize) -> Result<BytesPermit, IngestError> {
        let bytes = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        match self.budget.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => Ok(BytesPermit(permit)),
            Err(_) => {
                metrics::INGEST_REJECTED
                    .with_label_values(&["bytes_in_flight"])
                    .inc();
                Err(IngestError::BytesExhausted)
            }
        }
    }
}

impl BytesPermit {
    /// Adds `more` to this permit (a body's next chunk).
    pub fn merge(&mut self, more: BytesPermit) {
        self.0.merge(more.0);
    }

    /// Gives back what the request turned out not to need (a body shorter than reserved).
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX) as usize;
        let held = self.0.num_permits();
        if held > keep {
            if let Some(surplus) = self.0.split(held - keep) {
                drop(surplus);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_budget_refuses_beyond_its_size_and_refills_when_released() {
        let bytes = RequestBytes::new(1000);
        let mut first = bytes.take(800).unwrap();
        assert!(matches!(bytes.take(300), Err(IngestError::BytesExhausted)));
        first.shrink_to(100);
        let second = bytes.take(800).unwrap();
        drop((first, second));
        assert!(bytes.take(1000).is_ok());
    }

    #[test]
    fn the_backlog_estimate_adds_local_commits_to_the_last_truth() {
        let backlog = OutboxBacklog::default();
        backlog.committed(5);
        assert_eq!(backlog.estimate(), 5);
        backlog.refresh(Backlog {
            notifications: 3,
            oldest_age_seconds: 1.0,
        });
        assert_eq!(backlog.estimate(), 3, "the truth replaces the local count");
        backlog.committed(2);
        assert_eq!(backlog.estimate(), 5);
    }
}
