//! The transactional outbox (see docs/DESIGN.md): batches committed with their notifications,
//! deleted once the broker acknowledged them, re-published by the relay when they linger.

use std::time::Duration;

use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

/// Deletes the batches; returns how many notifications they listed (those now published).
pub async fn delete_batches(
    database: &DatabaseConnection,
    batch_ids: &[Uuid],
) -> Result<u64, DbErr> {
    #[derive(FromQueryResult)]
    struct Deleted {
        notifications: i64,
    }
    if batch_ids.is_empty() {
        return Ok(0);
    }
    let deleted = Deleted::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH deleted AS (DELETE FROM outbox_batches WHERE id = ANY($1) RETURNING cardinality(notification_ids) AS size)
SELECT coalesce(sum(size), 0)::bigint AS notifications FROM deleted
"#,
        [Value::from(batch_ids.to_vec())],
    ))
    .one(database)
    .await?;
    Ok(deleted.map_or(0, |deleted| deleted.notifications.max(0) as u64))
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct LeasedBatch {
    pub id: Uuid,
    pub notification_ids: Vec<Uuid>,
}

/// Leases up to `limit` outbox batches older than `grace` whose lease is absent or expired, for
/// `lease`. `SKIP LOCKED` and the lease keep two relays off the same batch.
pub async fn lease_stale_batches(
    database: &DatabaseConnection,
    grace: Duration,
    lease: Duration,
    limit: u64,
) -> Result<Vec<LeasedBatch>, DbErr> {
    LeasedBatch::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
UPDATE outbox_batches SET lease_until = now() + $2 * interval '1 millisecond'
WHERE id IN (
    SELECT id FROM outbox_batches
    WHERE created_at < now() - $1 * interval '1 millisecond'
      AND (lease_until IS NULL OR lease_until < now())
    ORDER BY created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
RETURNING id, notification_ids
"#,
        [
            Value::from(grace.as_millis() as i64),
            Value::from(lease.as_millis() as i64),
            Value::from(limit as i64),
        ],
    ))
    .all(database)
    .await
}

/// Notifications committed but not yet acknowledged by the broker, across all replicas.
pub async fn count_unpublished(database: &DatabaseConnection) -> Result<u64, DbErr> {
    #[derive(FromQueryResult)]
    struct Count {
        unpublished: i64,
    }
    let count = Count::find_by_statement(Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT coalesce(sum(cardinality(notification_ids)), 0)::bigint AS unpublished FROM outbox_batches",
    ))
    .one(database)
    .await?;
    Ok(count.map_or(0, |count| count.unpublished.max(0) as u64))
}

/// Moves up to `limit` due scheduled notifications to `accepted` and, in the same statement, into
/// one outbox batch dated `grace` in the past so that the relay publishes it on its next pass.
/// Returns how many were released.
pub async fn release_due_scheduled(
    database: &DatabaseConnection,
    grace: Duration,
    limit: u64,
) -> Result<u64, DbErr> {
    #[derive(FromQueryResult)]
    struct Released {
        released: i64,
    }
    let released = Released::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH due AS (
    UPDATE notifications SET status = 'accepted', updated_at = now()
    WHERE id IN (
        SELECT id FROM notifications
        WHERE status = 'scheduled' AND scheduled_for <= now()
        ORDER BY scheduled_for
        LIMIT $2
        FOR UPDATE SKIP LOCKED)
    RETURNING id
), outbox AS (
    INSERT INTO outbox_batches (id, notification_ids, created_at)
    SELECT $3, array_agg(id), now() - $1 * interval '1 millisecond' FROM due HAVING count(*) > 0
)
SELECT count(*)::bigint AS released FROM due
"#,
        [
            Value::from(grace.as_millis() as i64 + 1),
            Value::from(limit as i64),
            Value::from(Uuid::now_v7()),
        ],
    ))
    .one(database)
    .await?;
    Ok(released.map_or(0, |released| released.released as u64))
}
