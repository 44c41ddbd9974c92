//! What this worker knows of cancelled notifications (docs/DESIGN.md, "Cancellation"): a delivery
//! a lane holds (`sending`, claimed, waiting for a slot or a token) is cancelled before its call if
//! its notification was cancelled meanwhile, instead of being sent after the tenant cancelled.
//!
//! The cancel transaction writes `notification_cancellations`; every worker polls it every
//! `worker.sweep_interval_ms` and keeps the ids of the last [`REMEMBERED_FOR`] in memory, at most
//! [`MAX_REMEMBERED`] of them. A lane asks [`CancelledNotifications::contains`] (a hash lookup)
//! before it takes a token and again just before its call.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_store::cancellation::{self, Cancellation};
use herald_store::Database;
use herald_telemetry::supervise::every;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a cancellation is remembered: longer than a delivery can wait in a lane (a lane holds
/// at most `max_held`, sent at its provider's rate).
pub const REMEMBERED_FOR: Duration = Duration::from_secs(6 * 3600);
/// At most this many cancellations are remembered (16 bytes each, twice); past it the oldest are
/// forgotten, and their held deliveries are sent as before this existed.
pub const MAX_REMEMBERED: usize = 100_000;
/// A cancellation's time is the clock at its insert, the cancel transaction's last statement; a
/// slow commit can make it visible later than younger ones. Each poll reads again this far back.
const POLL_OVERLAP: Duration = Duration::from_secs(10);
/// Rows per poll statement.
const PAGE: u64 = 1000;

#[derive(Default)]
pub struct CancelledNotifications {
    known: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    ids: HashSet<Uuid>,
    /// The same ids, oldest first, to forget them in order.
    by_age: VecDeque<(DateTime<Utc>, Uuid)>,
    /// The newest cancellation seen: the next poll starts [`POLL_OVERLAP`] before it.
    newest: Option<DateTime<Utc>>,
}

impl CancelledNotifications {
    pub fn new() -> Arc<CancelledNotifications> {
        Arc::new(CancelledNotifications::default())
    }

    pub fn contains(&self, notification_id: Uuid) -> bool {
        self.known
            .read()
            .expect("never poisoned: no code panics while holding it")
            .ids
            .contains(&notification_id)
    }

    fn poll_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let oldest_wanted = now - REMEMBERED_FOR;
        let newest = self.known.read().expect("never poisoned").newest;
        newest.map_or(oldest_wanted, |newest| {
            (newest - POLL_OVERLAP).max(oldest_wanted)
        })
    }

    /// Learns `cancellations` and forgets what is older than [`REMEMBERED_FOR`] before `now`, or
    /// beyond [`MAX_REMEMBERED`].
    pub fn learn(&self, cancellations: &[Cancellation], now: DateTime<Utc>) {
        let mut known = self.known.write().expect("never poisoned");
        for cancellation in cancellations {
            if known.ids.insert(cancellation.notification_id) {
                known
                    .by_age
                    .push_back((cancellation.cancelled_at, cancellation.notification_id));
            }
            known.newest = known.newest.max(Some(cancellation.cancelled_at));
        }
        let oldest_kept = now - REMEMBERED_FOR;
        while let Some(&(cancelled_at, notification_id)) = known.by_age.front() {
            if cancelled_at >= oldest_kept && known.by_age.len() <= MAX_REMEMBERED {
                break;
            }
            known.by_age.pop_front();
            known.ids.remove(&notification_id);
        }
        debug_assert_eq!(known.ids.len(), known.by_age.len());
    }

    /// Reads the cancellations since the last poll (page by page) and learns them.
    pub async fn poll(&self, database: &Database) -> Result<(), herald_store::StoreError> {
        let now = Utc::now();
        let mut after = (self.poll_from(now), Uuid::nil());
        loop {
            let page = cancellation::cancellations_after(database, after, PAGE).await?;
            self.learn(&page, now);
            match page.last() {
                Some(last) if page.len() as u64 == PAGE => {
                    after = (last.cancelled_at, last.notification_id);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Polls every `interval` until `stop`; a failed poll is retried at the next one.
pub async fn run_cancellation_watch(
    database: Database,
    cancelled: Arc<CancelledNotifications>,
    interval: Duration,
    stop: CancellationToken,
) {
    every(interval, &stop, || async {
        if let Err(error) = cancelled.poll(&database).await {
            tracing::warn!(%error, "reading cancellations failed; held deliveries of them may be sent");
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancellation(notification_id: Uuid, cancelled_at: DateTime<Utc>) -> Cancellation {
        Cancellation {
            notification_id,
            cancelled_at,
        }
    }

    #[test]
    fn learns_once_polls_with_overlap_and_forgets_the_old_ones() {
        let cancelled = CancelledNotifications::default();
        let now = Utc::now();
        assert_eq!(cancelled.poll_from(now), now - REMEMBERED_FOR);

        let (old, recent) = (Uuid::now_v7(), Uuid::now_v7());
        let recent_at = now - chrono::Duration::seconds(1);
        cancelled.learn(
            &[
                cancellation(old, now - REMEMBERED_FOR - chrono::Duration::seconds(1)),
                cancellation(recent, recent_at),
                cancellation(recent, recent_at),
            ],
            now,
        );
        assert!(cancelled.contains(recent));
        assert!(!cancelled.contains(old), "older than remembered");
        assert!(!cancelled.contains(Uuid::now_v7()));
        assert_eq!(cancelled.poll_from(now), recent_at - POLL_OVERLAP);
        assert_eq!(cancelled.known.read().unwrap().by_age.len(), 1);
    }

    #[test]
    fn remembers_at_most_the_bound_forgetting_the_oldest() {
        let cancelled = CancelledNotifications::default();
        let now = Utc::now();
        let ids: Vec<Uuid> = (0..MAX_REMEMBERED + 10).map(|_| Uuid::now_v7()).collect();
        let page: Vec<Cancellation> = ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                cancellation(
                    *id,
                    now - chrono::Duration::seconds(60)
                        + chrono::Duration::microseconds(index as i64),
                )
            })
            .collect();
        cancelled.learn(&page, now);
        assert!(!cancelled.contains(ids[9]), "the oldest are forgotten");
        assert!(cancelled.contains(ids[10]));
        assert!(cancelled.contains(*ids.last().unwrap()));
        assert_eq!(cancelled.known.read().unwrap().ids.len(), MAX_REMEMBERED);
    }
}
