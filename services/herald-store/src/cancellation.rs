//! Cancelling a notification: every delivery not yet sent becomes `cancelled`, in one transaction.
//! The protocol, and why it cannot race the scheduler, the pump or admission, is "Cancellation" in
//! docs/DESIGN.md.

use chrono::{DateTime, Utc};
use herald_domain::{DeliveryEvent, DeliveryStatus, NotificationEvent, NotificationStatus};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use crate::columns::{self, row};
use crate::database::{Database, Finish, StoreError};
use crate::statement;

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelReport {
    /// Deliveries moved from `queued` or `retrying` to `cancelled` now.
    pub deliveries_cancelled: i32,
    /// Deliveries claimed by a worker (`sending`). The worker learns of the cancellation from
    /// `notification_cancellations` within its poll interval: those whose call has not started by
    /// then become `cancelled`, the others end as their call ends (sent or failed).
    pub deliveries_in_flight: i32,
    /// Deliveries whose records were not admitted yet: admission creates them `cancelled`.
    pub deliveries_not_created: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled(CancelReport),
    /// No notification with this id belongs to the tenant.
    NotFound,
    /// It is final already (delivered, failed, … or cancelled): nothing to cancel.
    AlreadyFinal(NotificationStatus),
}

/// Cancels the tenant's notification `notification_id`.
pub async fn cancel_notification(
    database: &Database,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> Result<CancelOutcome, StoreError> {
    database
        .transaction("cancellation.cancel", async |transaction| {
            let outcome = cancel_in(transaction, tenant_id, notification_id).await?;
            let finish = match outcome {
                CancelOutcome::Cancelled(_) => Finish::Commit,
                CancelOutcome::NotFound | CancelOutcome::AlreadyFinal(_) => Finish::RollBack,
            };
            Ok((outcome, finish))
        })
        .await
}

async fn cancel_in(
    transaction: &DatabaseTransaction,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> Result<CancelOutcome, DbErr> {
    #[derive(FromQueryResult)]
    struct Owner {
        tenant_id: Uuid,
    }
    row! {
        struct State {
            status: NotificationStatus,
            deliveries_expected: i32,
        }
    }
    row! {
        struct Pending {
            id: Uuid,
            status: DeliveryStatus,
        }
    }
    #[derive(FromQueryResult)]
    struct Count {
        count: i64,
    }

    // The owner never changes: read without a lock, so another tenant's id locks nothing.
    let owner = Owner::find_by_statement(statement(
        "SELECT tenant_id FROM notification_states WHERE id = $1",
        [Value::from(notification_id)],
    ))
    .one(transaction)
    .await?;
    if owner.is_none_or(|owner| owner.tenant_id != tenant_id) {
        return Ok(CancelOutcome::NotFound);
    }

    // The scheduler's release locks this row before the state row: the same order here, so the
    // two never deadlock. If the release committed first the row is gone and the state says
    // `accepted`; otherwise the release never sees it.
    transaction
        .execute(statement(
            "DELETE FROM scheduled_notifications WHERE notification_id = $1",
            [Value::from(notification_id)],
        ))
        .await?;

    let state = State::find_by_statement(statement(
        "SELECT status::text AS status, deliveries_expected FROM notification_states \
         WHERE id = $1 FOR UPDATE",
        [Value::from(notification_id)],
    ))
    .one(transaction)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("the notification's state vanished".into()))?;
    let cancelled_status = match state.status.transition(NotificationEvent::Cancelled) {
        Ok(status) => status,
        Err(_) => return Ok(CancelOutcome::AlreadyFinal(state.status)),
    };

    // Committed by now: the state row's lock orders this after every admission and recorder that
    // touched it (both lock it before committing).
    let pending = Pending::find_by_statement(statement(
        "SELECT id, status::text AS status FROM deliveries \
         WHERE notification_id = $1 AND status IN ('queued', 'retrying', 'sending')",
        [Value::from(notification_id)],
    ))
    .all(transaction)
    .await?;
    // A `sending` delivery belongs to the worker that claimed it: that worker cancels it before
    // its call if it learns of the cancellation in time (the row inserted below), never this
    // transaction.
    let waiting: Vec<Uuid> = pending
        .iter()
        .filter(|delivery| {
            delivery.status != DeliveryStatus::Sending
                && delivery.status.transition(DeliveryEvent::Cancelled).is_ok()
        })
        .map(|delivery| delivery.id)
        .collect();

    // Queue entries first (and those deferred to the end of quiet hours), skipping those a pump is
    // claiming or the sweeper moving right now (the claim cancels a cancelled notification's
    // deliveries itself). Never waiting on their locks is what keeps this free of deadlocks.
    let dequeued: Vec<Uuid> = Dequeued::find_by_statement(statement(
        "WITH queued AS ( \
             DELETE FROM delivery_queue WHERE delivery_id IN ( \
                 SELECT delivery_id FROM delivery_queue WHERE delivery_id = ANY($1) \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING delivery_id), \
         deferred AS ( \
             DELETE FROM deferred_deliveries WHERE delivery_id IN ( \
                 SELECT delivery_id FROM deferred_deliveries WHERE delivery_id = ANY($1) \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING delivery_id) \
         SELECT delivery_id FROM queued UNION ALL SELECT delivery_id FROM deferred",
        [Value::from(waiting.clone())],
    ))
    .all(transaction)
    .await?
    .into_iter()
    .map(|row| row.delivery_id)
    .collect();

    let cancelled = transaction
        .execute(statement(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = now(), \
                 last_error = 'cancelled with its notification before it was sent' \
             WHERE notification_id = $1 AND id = ANY($2) AND status IN ('queued', 'retrying')",
            [Value::from(notification_id), Value::from(dequeued)],
        ))
        .await?
        .rows_affected() as i32;

    let existing = Count::find_by_statement(statement(
        "SELECT count(*)::bigint AS count FROM deliveries WHERE notification_id = $1",
        [Value::from(notification_id)],
    ))
    .one(transaction)
    .await?
    .map_or(0, |row| row.count) as i32;

    transaction
        .execute(statement(
            "UPDATE notification_states \
             SET status = $2::notification_status, \
                 deliveries_cancelled = deliveries_cancelled + $3, updated_at = now() \
             WHERE id = $1",
            [
                Value::from(notification_id),
                columns::bind(cancelled_status),
                Value::from(cancelled),
            ],
        ))
        .await?;

    // Last, so that `cancelled_at` (the clock now) is at most a commit earlier than the row
    // becomes visible to the workers' polls.
    transaction
        .execute(statement(
            "INSERT INTO notification_cancellations (notification_id) VALUES ($1) \
             ON CONFLICT DO NOTHING",
            [Value::from(notification_id)],
        ))
        .await?;

    let in_flight = pending.len() as i32 - cancelled;
    Ok(CancelOutcome::Cancelled(CancelReport {
        deliveries_cancelled: cancelled,
        deliveries_in_flight: in_flight,
        deliveries_not_created: (state.deliveries_expected - existing).max(0),
    }))
}

#[derive(FromQueryResult)]
struct Dequeued {
    delivery_id: Uuid,
}

/// A cancellation as the workers poll it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromQueryResult)]
pub struct Cancellation {
    pub notification_id: Uuid,
    pub cancelled_at: DateTime<Utc>,
}

/// Cancellations after `after` in `(cancelled_at, notification_id)` order, at most `limit`: a
/// keyset page, so a caller reads any number of them page by page.
pub async fn cancellations_after(
    database: &Database,
    after: (DateTime<Utc>, Uuid),
    limit: u64,
) -> Result<Vec<Cancellation>, StoreError> {
    let (cancelled_at, notification_id) = after;
    database
        .run(
            "cancellation.poll",
            Cancellation::find_by_statement(statement(
                "SELECT notification_id, cancelled_at FROM notification_cancellations \
                 WHERE (cancelled_at, notification_id) > ($1, $2) \
                 ORDER BY cancelled_at, notification_id LIMIT $3",
                [
                    Value::from(cancelled_at),
                    Value::from(notification_id),
                    Value::from(limit as i64),
                ],
            ))
            .all(database.connection()),
        )
        .await
}
