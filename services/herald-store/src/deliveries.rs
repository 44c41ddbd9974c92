//! Deliveries: claiming (the worker's exactly-once gate), recording results, summarising a
//! notification's status, and the reads of the API. The protocol is in docs/DESIGN.md.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, FromQueryResult, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

/// A delivery the worker derived from a record: `status` is `sending` (to be claimed and sent)
/// or `skipped` (nothing to send; `last_error` says why).
#[derive(Debug, Clone, Serialize)]
pub struct NewDelivery {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: &'static str,
    pub status: &'static str,
    pub last_error: Option<String>,
}

/// A delivery this worker now owns, with the number of the attempt it is about to make.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: Uuid,
    pub attempt: i32,
}

fn to_json<T: Serialize>(value: &T) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|error| DbErr::Custom(error.to_string()))
}

fn millis(duration: Duration) -> Value {
    Value::from(duration.as_millis() as i64)
}

const CLAIM_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        id uuid, notification_id uuid, tenant_id uuid, user_id text, channel text, status text,
        last_error text)
), inserted AS (
    INSERT INTO deliveries (id, notification_id, tenant_id, user_id, channel, status, last_error,
                            lease_until, attempts)
    SELECT id, notification_id, tenant_id, user_id, channel, status, last_error,
           CASE WHEN status = 'sending' THEN now() + $2 * interval '1 millisecond' END,
           CASE WHEN status = 'sending' THEN 1 ELSE 0 END
    FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id, status
), reclaimed AS (
    -- Redelivered records: only in-doubt (lease expired) or due retries are claimed again.
    UPDATE deliveries d
    SET status = 'sending', lease_until = now() + $2 * interval '1 millisecond',
        attempts = d.attempts + 1, next_attempt_at = NULL, updated_at = now()
    FROM input
    WHERE d.id = input.id AND input.status = 'sending'
      AND ((d.status = 'sending' AND d.lease_until < now())
        OR (d.status = 'pending' AND d.next_attempt_at <= now()))
    RETURNING d.id, d.attempts
)
SELECT id, 1 AS attempt FROM inserted WHERE status = 'sending'
UNION ALL
SELECT id, attempts AS attempt FROM reclaimed
"#;

/// Inserts the deliveries (claimed for `lease` when `sending`) and re-claims existing ones that
/// are in doubt or due; returns what this worker must now send. Everything else is left alone.
pub async fn claim(
    database: &DatabaseConnection,
    deliveries: &[NewDelivery],
    lease: Duration,
) -> Result<Vec<Claimed>, DbErr> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    Claimed::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        CLAIM_SQL,
        [Value::from(to_json(&deliveries)?), millis(lease)],
    ))
    .all(database)
    .await
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptResult {
    pub id: Uuid,
    pub attempt: i32,
    /// The delivery's new status: `sent`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub status: &'static str,
    /// What happened on this attempt: `sent`, `retryable_error`, `permanent_error`, `gave_up`.
    pub outcome: &'static str,
    pub provider: &'static str,
    pub provider_message_id: Option<String>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

const RECORD_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        id uuid, attempt integer, status text, outcome text, provider text,
        provider_message_id text, http_status integer, error text, next_attempt_at timestamptz,
        started_at timestamptz, finished_at timestamptz)
), updated AS (
    -- `attempts = attempt`: a worker whose lease was taken over does not overwrite the new owner.
    UPDATE deliveries d
    SET status = input.status, provider = input.provider,
        provider_message_id = coalesce(input.provider_message_id, d.provider_message_id),
        last_error = input.error, lease_until = NULL, next_attempt_at = input.next_attempt_at,
        updated_at = now()
    FROM input
    WHERE d.id = input.id AND d.attempts = input.attempt
    RETURNING d.id
), attempts AS (
    INSERT INTO delivery_attempts (delivery_id, attempt, outcome, http_status, error,
                                   provider_message_id, started_at, finished_at)
    SELECT id, attempt, outcome, http_status, error, provider_message_id, started_at, finished_at
    FROM input
    ON CONFLICT DO NOTHING
)
SELECT count(*)::bigint AS recorded FROM updated
"#;

/// Records the attempts and the deliveries' new states in one statement.
pub async fn record(
    database: &DatabaseConnection,
    results: &[AttemptResult],
) -> Result<u64, DbErr> {
    #[derive(FromQueryResult)]
    struct Recorded {
        recorded: i64,
    }
    if results.is_empty() {
        return Ok(0);
    }
    let recorded = Recorded::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        RECORD_SQL,
        [Value::from(to_json(&results)?)],
    ))
    .one(database)
    .await?;
    Ok(recorded.map_or(0, |recorded| recorded.recorded as u64))
}

const STATUS_SQL: &str = r#"
WITH summary AS (
    SELECT n.id,
           cardinality(n.user_ids) * cardinality(n.channels) AS expected,
           count(d.id) AS total,
           count(d.id) FILTER (WHERE d.status IN ('sending', 'pending')) AS open,
           count(d.id) FILTER (WHERE d.status = 'sent') AS sent,
           count(d.id) FILTER (WHERE d.status = 'failed') AS failed
    FROM notifications n LEFT JOIN deliveries d ON d.notification_id = n.id
    WHERE n.id = ANY($1)
    GROUP BY n.id
), decided AS (
    SELECT id, CASE
        WHEN total < expected OR open > 0 THEN 'processing'
        WHEN sent > 0 AND failed = 0 THEN 'delivered'
        WHEN sent > 0 THEN 'partially_delivered'
        ELSE 'failed' END AS status
    FROM summary
)
UPDATE notifications n SET status = decided.status, updated_at = now()
FROM decided WHERE n.id = decided.id AND n.status <> decided.status
"#;

/// Sets each notification's status from its deliveries (see docs/DESIGN.md).
pub async fn refresh_notification_statuses(
    database: &DatabaseConnection,
    notification_ids: &[Uuid],
) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    if notification_ids.is_empty() {
        return Ok(());
    }
    database
        .execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            STATUS_SQL,
            [Value::from(notification_ids.to_vec())],
        ))
        .await?;
    Ok(())
}

/// A delivery the retry sweeper claimed: due retries and expired leases.
#[derive(Debug, Clone, FromQueryResult)]
pub struct SweptDelivery {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: String,
    pub attempt: i32,
}

pub async fn claim_due(
    database: &DatabaseConnection,
    lease: Duration,
    limit: u64,
) -> Result<Vec<SweptDelivery>, DbErr> {
    SweptDelivery::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH due AS (
    SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < now()
    ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET status = 'sending', lease_until = now() + $1 * interval '1 millisecond',
    attempts = d.attempts + 1, next_attempt_at = NULL, updated_at = now()
WHERE d.id IN (SELECT id FROM due UNION SELECT id FROM expired)
RETURNING d.id, d.notification_id, d.tenant_id, d.user_id, d.channel, d.attempts AS attempt
"#,
        [millis(lease), Value::from(limit as i64)],
    ))
    .all(database)
    .await
}

#[derive(Debug, Clone, FromQueryResult, Serialize)]
pub struct DeliveryRow {
    pub user_id: String,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn deliveries_of(
    database: &DatabaseConnection,
    notification_id: Uuid,
) -> Result<Vec<DeliveryRow>, DbErr> {
    DeliveryRow::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT user_id, channel, status, attempts, provider, provider_message_id, last_error, updated_at
FROM deliveries WHERE notification_id = $1 ORDER BY user_id, channel
"#,
        [Value::from(notification_id)],
    ))
    .all(database)
    .await
}
