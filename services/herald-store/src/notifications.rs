//! Notifications: the group-committed insert and the reads of the API.

use chrono::{DateTime, Utc};
use herald_domain::ValidatedNotification;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, FromQueryResult, JsonValue,
    Statement, Value,
};
use serde::Serialize;
use uuid::Uuid;

/// One notification of a commit batch.
pub struct NewNotification<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub notification: &'a ValidatedNotification,
    pub status: &'static str,
    pub request_hash: [u8; 32],
    pub created_at: DateTime<Utc>,
}

/// The JSON row `jsonb_to_recordset` reads: the whole batch travels as one parameter, so a batch
/// of any size is one statement with a stable text (one prepared statement, one plan).
#[derive(Serialize)]
struct InsertRow<'a> {
    id: Uuid,
    tenant_id: Uuid,
    user_ids: &'a [String],
    channels: Vec<&'static str>,
    subject: Option<&'a str>,
    body: &'a str,
    data: &'a serde_json::Map<String, serde_json::Value>,
    priority: &'static str,
    status: &'static str,
    scheduled_for: Option<DateTime<Utc>>,
    idempotency_key: Option<&'a str>,
    request_hash: String,
    created_at: DateTime<Utc>,
}

const INSERT_BATCH_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        id uuid, tenant_id uuid, user_ids text[], channels text[], subject text, body text,
        data jsonb, priority text, status text, scheduled_for timestamptz, idempotency_key text,
        request_hash text, created_at timestamptz)
), inserted AS (
    INSERT INTO notifications (id, tenant_id, user_ids, channels, subject, body, data, priority,
                               status, scheduled_for, idempotency_key, request_hash, created_at,
                               updated_at)
    SELECT id, tenant_id, user_ids, channels, subject, body, data, priority, status, scheduled_for,
           idempotency_key, decode(request_hash, 'hex'), created_at, created_at
    FROM input
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, status
), outbox AS (
    INSERT INTO outbox_batches (id, notification_ids, created_at)
    SELECT $2, array_agg(id), now() FROM inserted WHERE status = 'accepted' HAVING count(*) > 0
)
SELECT id FROM inserted
"#;

/// Inserts the batch and, in the same statement, its outbox entry (id `outbox_batch_id`) listing
/// the inserted notifications that are due now (scheduled ones enter the outbox when due).
/// Returns the ids actually inserted: a missing id lost an idempotency-key conflict.
pub async fn insert_batch(
    database: &DatabaseConnection,
    rows: &[NewNotification<'_>],
    outbox_batch_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    let json_rows: Vec<InsertRow> = rows
        .iter()
        .map(|row| InsertRow {
            id: row.id,
            tenant_id: row.tenant_id,
            user_ids: &row.notification.user_ids,
            channels: row
                .notification
                .channels
                .iter()
                .map(|channel| channel.as_str())
                .collect(),
            subject: row.notification.subject.as_deref(),
            body: &row.notification.body,
            data: &row.notification.data,
            priority: row.notification.priority.as_str(),
            status: row.status,
            scheduled_for: row.notification.scheduled_for,
            idempotency_key: row.notification.idempotency_key.as_deref(),
            request_hash: hex::encode(row.request_hash),
            created_at: row.created_at,
        })
        .collect();
    let batch_json =
        serde_json::to_string(&json_rows).map_err(|error| DbErr::Custom(error.to_string()))?;
    let inserted = database
        .query_all(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            INSERT_BATCH_SQL,
            [Value::from(batch_json), Value::from(outbox_batch_id)],
        ))
        .await?;
    inserted
        .iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect()
}

/// The notification already holding an idempotency key.
#[derive(Debug, Clone, FromQueryResult)]
pub struct IdempotencyHolder {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    /// Its current status, which a repeat of the request is answered with.
    pub status: String,
}

/// Looks up the holders of `(tenant_id, idempotency_key)` pairs in one query.
pub async fn find_idempotency_holders(
    database: &DatabaseConnection,
    keys: &[(Uuid, &str)],
) -> Result<Vec<IdempotencyHolder>, DbErr> {
    #[derive(Serialize)]
    struct Key<'a> {
        tenant_id: Uuid,
        idempotency_key: &'a str,
    }
    let keys_json = serde_json::to_string(
        &keys
            .iter()
            .map(|(tenant_id, idempotency_key)| Key {
                tenant_id: *tenant_id,
                idempotency_key,
            })
            .collect::<Vec<_>>(),
    )
    .map_err(|error| DbErr::Custom(error.to_string()))?;
    IdempotencyHolder::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT n.id, n.tenant_id, n.idempotency_key, n.request_hash, n.status
FROM jsonb_to_recordset($1::jsonb) AS key(tenant_id uuid, idempotency_key text)
JOIN notifications n ON n.tenant_id = key.tenant_id AND n.idempotency_key = key.idempotency_key
"#,
        [Value::from(keys_json)],
    ))
    .all(database)
    .await
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct NotificationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_ids: Vec<String>,
    pub channels: Vec<String>,
    pub subject: Option<String>,
    pub body: String,
    pub data: JsonValue,
    pub priority: String,
    pub status: String,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const NOTIFICATION_COLUMNS: &str = "id, tenant_id, user_ids, channels, subject, body, data, \
     priority, status, scheduled_for, idempotency_key, created_at, updated_at";

pub async fn find_notification(
    database: &DatabaseConnection,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> Result<Option<NotificationRow>, DbErr> {
    NotificationRow::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = $1 AND id = $2"
        ),
        [Value::from(tenant_id), Value::from(notification_id)],
    ))
    .one(database)
    .await
}

pub struct ListFilter<'a> {
    pub tenant_id: Uuid,
    pub user_id: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Keyset cursor: only notifications with a smaller (older) id.
    pub before_id: Option<Uuid>,
    pub limit: u64,
}

/// A page of the tenant's notifications, newest first. Only the predicates that are set appear in
/// the SQL, so each combination gets its own plan.
pub async fn list_notifications(
    database: &DatabaseConnection,
    filter: ListFilter<'_>,
) -> Result<Vec<NotificationRow>, DbErr> {
    let mut sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = $1");
    let mut values = vec![Value::from(filter.tenant_id)];
    if let Some(user_id) = filter.user_id {
        values.push(Value::from(vec![user_id.to_owned()]));
        sql.push_str(&format!(" AND user_ids @> ${}", values.len()));
    }
    if let Some(status) = filter.status {
        values.push(Value::from(status.to_owned()));
        sql.push_str(&format!(" AND status = ${}", values.len()));
    }
    if let Some(before_id) = filter.before_id {
        values.push(Value::from(before_id));
        sql.push_str(&format!(" AND id < ${}", values.len()));
    }
    values.push(Value::from(filter.limit as i64));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len()));
    NotificationRow::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
    .all(database)
    .await
}

/// Notifications by id, in acceptance order (the outbox relay, the worker's retry sweeper).
pub async fn load_by_ids(
    database: &DatabaseConnection,
    notification_ids: &[Uuid],
) -> Result<Vec<NotificationRow>, DbErr> {
    NotificationRow::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ANY($1) ORDER BY id"),
        [Value::from(notification_ids.to_vec())],
    ))
    .all(database)
    .await
}
