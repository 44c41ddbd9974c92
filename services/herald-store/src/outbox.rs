//! The transactional outbox (docs/DESIGN.md, "Publishing"): batches committed with their
//! notifications, completed once every record is acknowledged or parked, leased and renewed by the
//! relay when they linger; and the release of due scheduled notifications into it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, StoreError};
use crate::json_parameter;

fn millis(duration: Duration) -> Value {
    Value::from(duration.as_millis() as i64)
}

/// A record the broker refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParkedRecord {
    pub notification_id: Uuid,
    pub user_id: String,
    pub reason: String,
}

/// Parks `parked` and deletes the outbox batches `completed` (every record acknowledged or parked),
/// in one statement. Returns how many notifications the deleted batches listed.
pub async fn complete_batches(
    database: &Database,
    completed: &[Uuid],
    parked: &[ParkedRecord],
) -> Result<u64, StoreError> {
    if completed.is_empty() && parked.is_empty() {
        return Ok(0);
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH parked AS (
    INSERT INTO parked_publications (notification_id, user_id, reason)
    SELECT notification_id, user_id, reason
    FROM jsonb_to_recordset($2::jsonb) AS row(notification_id uuid, user_id text, reason text)
    ON CONFLICT (notification_id, user_id) DO UPDATE
        SET reason = excluded.reason, parked_at = now(), replayed_at = NULL
), deleted AS (
    DELETE FROM outbox_batches WHERE id = ANY($1) RETURNING notification_count
)
SELECT coalesce(sum(notification_count), 0)::bigint AS notifications FROM deleted
"#,
        [Value::from(completed.to_vec()), json_parameter(&parked)?],
    );
    let completed = database
        .scalar("outbox.complete_batches", statement)
        .await?;
    Ok(completed.max(0) as u64)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct LeasedBatch {
    pub id: Uuid,
    pub notification_ids: Vec<Uuid>,
}

/// Leases up to `limit` outbox batches older than `grace` whose lease is absent or expired, to
/// `owner` for `lease`, oldest first. `SKIP LOCKED` and the lease keep two relays off one batch.
pub async fn lease_stale_batches(
    database: &Database,
    owner: Uuid,
    grace: Duration,
    lease: Duration,
    limit: u64,
) -> Result<Vec<LeasedBatch>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH picked AS MATERIALIZED (
    -- Picked once: as an `IN (...)` subquery the planner may run it again per row, and with SKIP
    -- LOCKED each run finds new rows, past LIMIT (deliveries::claim_queued).
    SELECT id FROM outbox_batches
    WHERE created_at < now() - $1 * interval '1 millisecond'
      AND (lease_until IS NULL OR lease_until < now())
    ORDER BY created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox_batches SET lease_owner = $4, lease_until = now() + $2 * interval '1 millisecond'
WHERE id IN (SELECT id FROM picked)
RETURNING id, notification_ids
"#,
        [
            millis(grace),
            millis(lease),
            Value::from(limit as i64),
            Value::from(owner),
        ],
    );
    let mut batches = database
        .run(
            "outbox.lease_stale_batches",
            LeasedBatch::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    // Oldest first: UPDATE ... RETURNING does not keep the subquery's order, ids are time-ordered.
    batches.sort_by_key(|batch| batch.id);
    Ok(batches)
}

/// Extends `owner`'s leases on `batch_ids`; returns how many it still held.
pub async fn renew_leases(
    database: &Database,
    owner: Uuid,
    batch_ids: &[Uuid],
    lease: Duration,
) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
UPDATE outbox_batches SET lease_until = now() + $3 * interval '1 millisecond'
WHERE id = ANY($1) AND lease_owner = $2
"#,
        [
            Value::from(batch_ids.to_vec()),
            Value::from(owner),
            millis(lease),
        ],
    );
    let result = database
        .run(
            "outbox.renew_leases",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected())
}

/// The outbox as operators and admission control see it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Notifications committed but not yet acknowledged by the broker (or parked), all replicas.
    pub notifications: u64,
    pub oldest_age_seconds: f64,
}

pub async fn backlog(database: &Database) -> Result<Backlog, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        notifications: i64,
        oldest_age_seconds: f64,
    }
    let statement = Statement::from_string(
        DatabaseBackend::Postgres,
        r#"
SELECT coalesce(sum(notification_count), 0)::bigint AS notifications,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox_batches
"#,
    );
    let row = database
        .run(
            "outbox.backlog",
            Row::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    Ok(row.map_or_else(Backlog::default, |row| Backlog {
        notifications: row.notifications.max(0) as u64,
        oldest_age_seconds: row.oldest_age_seconds.max(0.0),
    }))
}

/// Moves up to `limit` due scheduled notifications to `accepted` and, in the same statement, into
/// one outbox batch dated `grace` in the past so that the relay publishes it on its next pass.
/// Returns how many were released.
pub async fn release_due_scheduled(
    database: &Database,
    grace: Duration,
    limit: u64,
) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH picked AS MATERIALIZED (
    -- Picked once, at most LIMIT (see lease_stale_batches).
    SELECT notification_id FROM scheduled_notifications
    WHERE due_at <= now()
    ORDER BY due_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), due AS (
    DELETE FROM scheduled_notifications WHERE notification_id IN (SELECT notification_id FROM picked)
    RETURNING notification_id
), released AS (
    UPDATE notification_states s SET status = 'accepted', updated_at = now()
    FROM due WHERE s.id = due.notification_id AND s.status = 'scheduled'
    RETURNING s.id
), outbox AS (
    INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at)
    SELECT $3, array_agg(id ORDER BY id), count(*), now() - $1 * interval '1 millisecond'
    FROM released HAVING count(*) > 0
)
SELECT count(*)::bigint AS released FROM released
"#,
        [
            Value::from(grace.as_millis() as i64 + 1),
            Value::from(limit as i64),
            Value::from(Uuid::now_v7()),
        ],
    );
    let released = database
        .scalar("outbox.release_due_scheduled", statement)
        .await?;
    Ok(released.max(0) as u64)
}

/// A parked record, as `herald-api parked` lists it.
#[derive(Debug, Clone, FromQueryResult, Serialize)]
pub struct ParkedPublication {
    pub notification_id: Uuid,
    pub user_id: String,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
}

pub async fn parked_publications(
    database: &Database,
    limit: u64,
) -> Result<Vec<ParkedPublication>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT notification_id, user_id, reason, parked_at FROM parked_publications
WHERE replayed_at IS NULL ORDER BY parked_at LIMIT $1
"#,
        [Value::from(limit as i64)],
    );
    database
        .run(
            "outbox.parked_publications",
            ParkedPublication::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// Parked records not replayed yet (the gauge operators alert on).
pub async fn count_parked(database: &Database) -> Result<u64, StoreError> {
    let statement = Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT count(*)::bigint AS parked FROM parked_publications WHERE replayed_at IS NULL",
    );
    let count = database.scalar("outbox.count_parked", statement).await?;
    Ok(count.max(0) as u64)
}

/// Puts the notifications of parked records (all of them, or those of `notification_id`) back into
/// the outbox, due now, and marks the records replayed. Workers deduplicate by delivery, so
/// republishing a whole notification sends only what was never delivered. Returns how many
/// notifications were queued again.
pub async fn replay_parked(
    database: &Database,
    notification_id: Option<Uuid>,
    grace: Duration,
) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH replayed AS (
    UPDATE parked_publications SET replayed_at = now()
    WHERE replayed_at IS NULL AND ($1::uuid IS NULL OR notification_id = $1)
    RETURNING notification_id
), notifications AS (
    SELECT DISTINCT notification_id AS id FROM replayed
), outbox AS (
    INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at)
    SELECT $2, array_agg(id ORDER BY id), count(*), now() - $3 * interval '1 millisecond'
    FROM notifications HAVING count(*) > 0
)
SELECT count(*)::bigint AS notifications FROM notifications
"#,
        [
            Value::from(notification_id),
            Value::from(Uuid::now_v7()),
            Value::from(grace.as_millis() as i64 + 1),
        ],
    );
    let replayed = database.scalar("outbox.replay_parked", statement).await?;
    Ok(replayed.max(0) as u64)
}
