//! Dead letters: deliveries that failed for good, as a tenant lists and replays them. The recorder
//! writes them (`deliveries::record`); the protocol is "Dead letters" in docs/DESIGN.md.

use chrono::{DateTime, Utc};
use herald_domain::{
    Channel, DeliveryEvent, DeliveryStatus, NotificationEvent, NotificationStatus, ProviderId,
};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, FromQueryResult, Statement, Value,
};
use uuid::Uuid;

use crate::columns::{self, row};
use crate::database::{Database, Finish, StoreError};
use crate::statement;

row! {
    /// One dead letter as the API shows it.
    #[derive(Debug, Clone)]
    pub struct DeadLetterRow {
        /// The letter's own id (UUIDv7 of its failure): the listing's order and cursor.
        pub id: Uuid,
        pub delivery_id: Uuid,
        pub notification_id: Uuid,
        pub user_id: String,
        pub channel: Channel,
        pub provider: ProviderId,
        pub attempts: i32,
        pub last_error: Option<String>,
        pub failed_at: DateTime<Utc>,
        pub replayed_at: Option<DateTime<Utc>>,
    }
}

/// A page of the tenant's dead letters, newest first, older than the letter `before_id`
/// (served by the index `(tenant_id, id)`).
pub async fn list_dead_letters(
    database: &Database,
    tenant_id: Uuid,
    before_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<DeadLetterRow>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT id, delivery_id, notification_id, user_id, channel::text AS channel, provider, attempts,
       last_error, failed_at, replayed_at
FROM dead_letters
WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"#,
        [
            Value::from(tenant_id),
            Value::from(before_id),
            Value::from(limit as i64),
        ],
    );
    database
        .run(
            "dead_letters.list",
            DeadLetterRow::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// What a replay did, or why it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The delivery is `queued` again (due now), its notification in this status.
    Replayed {
        notification_id: Uuid,
        notification_status: NotificationStatus,
    },
    /// The tenant has no dead letter for this delivery.
    NotFound,
    /// Its notification was cancelled: nothing of it is sent any more.
    NotificationCancelled,
    /// The delivery is not `failed` (a replay of it is still pending, or it was sent since).
    DeliveryNotFailed(DeliveryStatus),
}

/// Sends the tenant's failed delivery `delivery_id` again with the same id, in one transaction.
pub async fn replay_dead_letter(
    database: &Database,
    tenant_id: Uuid,
    delivery_id: Uuid,
) -> Result<ReplayOutcome, StoreError> {
    database
        .transaction("dead_letters.replay", async |transaction| {
            let outcome = replay_in(transaction, tenant_id, delivery_id).await?;
            let finish = match outcome {
                ReplayOutcome::Replayed { .. } => Finish::Commit,
                _ => Finish::RollBack,
            };
            Ok((outcome, finish))
        })
        .await
}

async fn replay_in(
    transaction: &DatabaseTransaction,
    tenant_id: Uuid,
    delivery_id: Uuid,
) -> Result<ReplayOutcome, DbErr> {
    #[derive(FromQueryResult)]
    struct Letter {
        id: Uuid,
        notification_id: Uuid,
        replayed: bool,
    }
    row! {
        struct State {
            status: NotificationStatus,
            deliveries_failed: i32,
        }
    }
    row! {
        struct Delivery {
            status: DeliveryStatus,
        }
    }

    let Some(letter) = Letter::find_by_statement(statement(
        "SELECT id, notification_id, replayed_at IS NOT NULL AS replayed FROM dead_letters \
         WHERE delivery_id = $1 AND tenant_id = $2 ORDER BY id DESC LIMIT 1",
        [Value::from(delivery_id), Value::from(tenant_id)],
    ))
    .one(transaction)
    .await?
    else {
        return Ok(ReplayOutcome::NotFound);
    };
    let notification_id = letter.notification_id;

    // The state row first, then the delivery: the order of a cancellation, so a replay and a
    // cancellation of the same notification run one after the other.
    let Some(state) = State::find_by_statement(statement(
        "SELECT status::text AS status, deliveries_failed \
         FROM notification_states WHERE id = $1 FOR UPDATE",
        [Value::from(notification_id)],
    ))
    .one(transaction)
    .await?
    else {
        // Past the retention: the letter's notification is gone.
        return Ok(ReplayOutcome::NotFound);
    };
    if state.status == NotificationStatus::Cancelled {
        return Ok(ReplayOutcome::NotificationCancelled);
    }

    let Some(delivery) = Delivery::find_by_statement(statement(
        "SELECT status::text AS status FROM deliveries WHERE notification_id = $1 AND id = $2 \
         FOR UPDATE",
        [Value::from(notification_id), Value::from(delivery_id)],
    ))
    .one(transaction)
    .await?
    else {
        return Ok(ReplayOutcome::NotFound);
    };
    let replayed_status = match delivery.status.transition(DeliveryEvent::Replayed) {
        Ok(status) => status,
        Err(_) => return Ok(ReplayOutcome::DeliveryNotFailed(delivery.status)),
    };
    // Each failure the recorder counts writes a new letter; a replayed newest letter means this
    // failure came later without one (a provider's report of the resend), was never counted, and
    // must not take another delivery's failure out of the counter.
    if letter.replayed || state.deliveries_failed < 1 {
        // A failure that was never counted (a provider's report of a sent one): nothing to take
        // back, so nothing to replay from here.
        return Ok(ReplayOutcome::DeliveryNotFailed(delivery.status));
    }

    // Out of the `failed` counter; a final notification is in progress again. One that is not
    // final has other deliveries under way and is `processing` already: it stays so.
    let notification_status = if state.status.is_final() {
        match state.status.transition(NotificationEvent::Reopened) {
            Ok(status) => status,
            Err(_) => return Ok(ReplayOutcome::DeliveryNotFailed(delivery.status)),
        }
    } else {
        state.status
    };

    transaction
        .execute(statement(
            "UPDATE deliveries \
             SET status = $3::delivery_status, attempt_budget_start = attempts, owner_session = NULL, \
                 next_attempt_at = NULL, updated_at = now(), \
                 last_error = 'replayed from the dead letters: ' || coalesce(last_error, '') \
             WHERE notification_id = $1 AND id = $2 AND status = 'failed'",
            [
                Value::from(notification_id),
                Value::from(delivery_id),
                columns::bind(replayed_status),
            ],
        ))
        .await?;
    transaction
        .execute(statement(
            "INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at) \
             SELECT d.id, d.notification_id, d.provider, d.tenant_id, coalesce(n.priority, 'normal'), now() \
             FROM deliveries d LEFT JOIN notifications n ON n.id = d.notification_id \
             WHERE d.notification_id = $1 AND d.id = $2 \
             ON CONFLICT (delivery_id) DO UPDATE SET due_at = excluded.due_at",
            [Value::from(notification_id), Value::from(delivery_id)],
        ))
        .await?;
    transaction
        .execute(statement(
            "UPDATE dead_letters SET replayed_at = now() WHERE id = $1",
            [Value::from(letter.id)],
        ))
        .await?;
    transaction
        .execute(statement(
            "UPDATE notification_states \
             SET status = $2::notification_status, deliveries_failed = deliveries_failed - 1, \
                 updated_at = now() \
             WHERE id = $1",
            [
                Value::from(notification_id),
                columns::bind(notification_status),
            ],
        ))
        .await?;
    Ok(ReplayOutcome::Replayed {
        notification_id,
        notification_status,
    })
}
