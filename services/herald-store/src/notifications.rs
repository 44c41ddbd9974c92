//! Notifications: the group-committed insert, the reads of the API, and the loads of the publisher
//! and the worker.

use chrono::{DateTime, Utc};
use herald_domain::{
    AcceptedNotification, Channel, NotificationEnvelope, NotificationStatus, Priority,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, JsonValue, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::columns::row;
use crate::database::{Database, StoreError};
use crate::json_parameter;

/// The JSON row `jsonb_to_recordset` reads: the whole batch travels as one parameter, so a batch
/// of any size is one statement with a stable text (one prepared statement, one plan).
#[derive(Serialize)]
struct InsertRow<'a> {
    id: Uuid,
    tenant_id: Uuid,
    user_ids: &'a [String],
    group_ids: &'a [String],
    groups: &'a [Uuid],
    channels: &'a [Channel],
    subject: Option<&'a str>,
    body: &'a str,
    data: &'a serde_json::Map<String, serde_json::Value>,
    priority: Priority,
    status: NotificationStatus,
    deliveries_expected: i32,
    scheduled_for: Option<DateTime<Utc>>,
    idempotency_key: Option<&'a str>,
    request_hash: String,
    created_at: DateTime<Utc>,
    trace_parent: Option<&'a str>,
    template_id: Option<&'a str>,
    template_version: Option<i32>,
    category: Option<&'a str>,
}

const INSERT_BATCH_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        id uuid, tenant_id uuid, user_ids text[], group_ids text[], groups uuid[],
        channels channel[], subject text, body text,
        data jsonb, priority priority, status notification_status, deliveries_expected integer,
        scheduled_for timestamptz, idempotency_key text, request_hash text, created_at timestamptz,
        trace_parent text, template_id text, template_version integer, category text)
), claimed_keys AS (
    -- A key already held (or held twice within this batch) is not claimed: its row is not inserted.
    INSERT INTO idempotency_keys (tenant_id, key, notification_id, request_hash, created_at)
    SELECT tenant_id, idempotency_key, id, decode(request_hash, 'hex'), created_at
    FROM input WHERE idempotency_key IS NOT NULL
    ON CONFLICT (tenant_id, key) DO NOTHING
    RETURNING notification_id
), accepted AS (
    SELECT * FROM input
    WHERE idempotency_key IS NULL OR id IN (SELECT notification_id FROM claimed_keys)
), content AS (
    -- The tenant's routing rules as of now (their head), which the workers will evaluate.
    INSERT INTO notifications (id, tenant_id, user_ids, group_ids, channels, subject, body, data,
                               priority, scheduled_for, idempotency_key, request_hash, created_at,
                               trace_parent, template_id, template_version, category,
                               routing_rules_version)
    SELECT accepted.id, accepted.tenant_id, user_ids, group_ids, channels, subject, body, data,
           priority, scheduled_for, idempotency_key, decode(request_hash, 'hex'), created_at,
           trace_parent, template_id, template_version, category, heads.version
    FROM accepted LEFT JOIN routing_rule_heads heads ON heads.tenant_id = accepted.tenant_id
), states AS (
    INSERT INTO notification_states (id, tenant_id, status, deliveries_expected,
                                     expansions_pending, updated_at)
    SELECT id, tenant_id, status, deliveries_expected, cardinality(groups), created_at
    FROM accepted
), expansions AS (
    -- Each group's fan-out, for the workers (group_expansions.rs). `now()` is this transaction's
    -- start, between the request's arrival and its answer: membership as of then.
    INSERT INTO group_expansions (notification_id, group_id, tenant_id, as_of)
    SELECT accepted.id, group_id, accepted.tenant_id, now()
    FROM accepted CROSS JOIN LATERAL unnest(accepted.groups) AS group_id
), scheduled AS (
    INSERT INTO scheduled_notifications (notification_id, due_at)
    SELECT id, scheduled_for FROM accepted WHERE status = 'scheduled'
), outbox AS (
    INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at)
    SELECT $2, array_agg(id), count(*), now() FROM accepted WHERE status = 'accepted'
    HAVING count(*) > 0
)
SELECT id FROM accepted
"#;

/// Inserts the batch and, in the same statement, its idempotency keys, states, schedule entries and
/// outbox entry (id `outbox_batch_id`) listing the inserted notifications that are due now.
/// Returns the ids actually inserted: a missing id lost an idempotency-key conflict.
pub async fn insert_batch(
    database: &Database,
    rows: &[&AcceptedNotification],
    outbox_batch_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    #[derive(FromQueryResult)]
    struct Inserted {
        id: Uuid,
    }
    let json_rows: Vec<InsertRow> = rows
        .iter()
        .map(|row| InsertRow {
            id: row.id,
            tenant_id: row.tenant_id,
            user_ids: &row.notification.user_ids,
            group_ids: &row.notification.group_ids,
            groups: &row.groups,
            channels: &row.notification.channels,
            subject: row.notification.subject.as_deref(),
            body: &row.notification.body,
            data: &row.notification.data,
            priority: row.notification.priority,
            status: row.status,
            deliveries_expected: row.notification.deliveries_expected(),
            scheduled_for: row.notification.scheduled_for,
            idempotency_key: row.notification.idempotency_key.as_deref(),
            request_hash: hex::encode(row.request_hash),
            created_at: row.accepted_at,
            trace_parent: row.trace_parent.as_deref(),
            template_id: row
                .notification
                .template
                .as_ref()
                .map(|template| template.id.as_str()),
            template_version: row.template_version,
            category: row.notification.category.as_deref(),
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        INSERT_BATCH_SQL,
        [json_parameter(&json_rows)?, Value::from(outbox_batch_id)],
    );
    let inserted = database
        .run(
            "notifications.insert_batch",
            Inserted::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    Ok(inserted.into_iter().map(|row| row.id).collect())
}

row! {
    /// The notification already holding an idempotency key.
    #[derive(Debug, Clone)]
    pub struct IdempotencyHolder {
        pub notification_id: Uuid,
        pub tenant_id: Uuid,
        pub key: String,
        pub request_hash: Vec<u8>,
        /// Its current status, which a repeat of the request is answered with.
        pub status: Option<NotificationStatus>,
    }
}

impl IdempotencyHolder {
    pub fn status(&self) -> NotificationStatus {
        self.status.unwrap_or(NotificationStatus::Accepted)
    }
}

/// Looks up the holders of `(tenant_id, idempotency_key)` pairs in one query.
pub async fn find_idempotency_holders(
    database: &Database,
    keys: &[(Uuid, &str)],
) -> Result<Vec<IdempotencyHolder>, StoreError> {
    #[derive(Serialize)]
    struct Key<'a> {
        tenant_id: Uuid,
        key: &'a str,
    }
    let keys: Vec<Key> = keys
        .iter()
        .map(|(tenant_id, key)| Key {
            tenant_id: *tenant_id,
            key,
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT k.notification_id, k.tenant_id, k.key, k.request_hash, s.status::text AS status
FROM jsonb_to_recordset($1::jsonb) AS wanted(tenant_id uuid, key text)
JOIN idempotency_keys k ON k.tenant_id = wanted.tenant_id AND k.key = wanted.key
LEFT JOIN notification_states s ON s.id = k.notification_id
"#,
        [json_parameter(&keys)?],
    );
    database
        .run(
            "notifications.find_idempotency_holders",
            IdempotencyHolder::find_by_statement(statement).all(database.connection()),
        )
        .await
}

row! {
    /// A notification as the API shows it: content, status and delivery counters.
    #[derive(Debug, Clone)]
    pub struct NotificationRow {
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub user_ids: Vec<String>,
        pub group_ids: Vec<String>,
        pub channels: Vec<Channel>,
        pub subject: Option<String>,
        pub body: String,
        pub data: JsonValue,
        pub priority: Priority,
        pub status: NotificationStatus,
        pub scheduled_for: Option<DateTime<Utc>>,
        pub idempotency_key: Option<String>,
        pub deliveries_expected: i32,
        pub deliveries_sent: i32,
        pub deliveries_failed: i32,
        pub deliveries_skipped: i32,
        pub deliveries_cancelled: i32,
        /// Groups not yet expanded into recipients.
        pub expansions_pending: i32,
        pub template_id: Option<String>,
        pub template_version: Option<i32>,
        pub category: Option<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }
}

const NOTIFICATION_COLUMNS: &str =
    "n.id, n.tenant_id, n.user_ids, n.group_ids, n.channels::text[] AS channels, \
     n.subject, n.body, n.data, n.priority::text AS priority, s.status::text AS status, \
     n.scheduled_for, n.idempotency_key, s.deliveries_expected, s.deliveries_sent, \
     s.deliveries_failed, s.deliveries_skipped, s.deliveries_cancelled, s.expansions_pending, \
     n.template_id, n.template_version, n.category, n.created_at, s.updated_at";

pub async fn find_notification(
    database: &Database,
    tenant_id: Uuid,
    notification_id: Uuid,
) -> Result<Option<NotificationRow>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN notification_states s ON s.id = n.id \
             WHERE n.id = $1 AND n.tenant_id = $2"
        ),
        [Value::from(notification_id), Value::from(tenant_id)],
    );
    database
        .run(
            "notifications.find",
            NotificationRow::find_by_statement(statement).one(database.connection()),
        )
        .await
}

pub struct ListFilter<'a> {
    pub tenant_id: Uuid,
    pub user_id: Option<&'a str>,
    pub status: Option<NotificationStatus>,
    /// Keyset cursor: only notifications with a smaller (older) id.
    pub before_id: Option<Uuid>,
    pub limit: u64,
}

/// A page of the tenant's notifications, newest first. A status filter is served by the
/// `(tenant_id, status, id)` index of the states, the rest by `(tenant_id, id)`; only the
/// predicates that are set appear in the SQL. A recipient filter walks the recipient's own
/// `notification_recipients` rows backwards from the cursor and stops at the page's size, so a
/// page costs the same for a recipient of three notifications or of 15,000 (docs/DESIGN.md,
/// "Reading a recipient's notifications").
pub async fn list_notifications(
    database: &Database,
    filter: ListFilter<'_>,
) -> Result<Vec<NotificationRow>, StoreError> {
    let (operation, statement) = list_statement(&filter);
    database
        .run(
            operation,
            NotificationRow::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// The statement [`list_notifications`] runs for `filter`, and the operation it is timed and
/// counted as; public so that a test can `EXPLAIN` exactly what a read runs.
pub fn list_statement(filter: &ListFilter<'_>) -> (&'static str, Statement) {
    let mut placeholders = Placeholders(Vec::new());
    let (operation, sql) = match filter.user_id {
        Some(user_id) => (
            "notifications.list_recipient",
            list_recipient_sql(filter, user_id, &mut placeholders),
        ),
        None => (
            "notifications.list",
            list_without_recipient_sql(filter, &mut placeholders),
        ),
    };
    let statement = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, placeholders.0);
    (operation, statement)
}

/// SQL placeholders in order: `push` returns the `$n` naming the value just added.
struct Placeholders(Vec<Value>);

impl Placeholders {
    fn push(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

/// ` AND s.status = $n` when the filter has a status.
fn status_predicate(filter: &ListFilter<'_>, placeholders: &mut Placeholders) -> String {
    match filter.status {
        Some(status) => format!(
            " AND s.status = {}::notification_status",
            placeholders.push(status.as_str())
        ),
        None => String::new(),
    }
}

/// ` AND {id_column} < $n` when the filter has a cursor.
fn cursor_predicate(
    filter: &ListFilter<'_>,
    id_column: &str,
    placeholders: &mut Placeholders,
) -> String {
    match filter.before_id {
        Some(before_id) => format!(" AND {id_column} < {}", placeholders.push(before_id)),
        None => String::new(),
    }
}

fn list_without_recipient_sql(filter: &ListFilter<'_>, placeholders: &mut Placeholders) -> String {
    let tenant = placeholders.push(filter.tenant_id);
    let order_column = if filter.status.is_some() {
        "s.id"
    } else {
        "n.id"
    };
    let status = status_predicate(filter, placeholders);
    let cursor = cursor_predicate(filter, order_column, placeholders);
    let limit = filter.limit;
    format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN notification_states s ON s.id = n.id \
         WHERE n.tenant_id = {tenant} AND s.tenant_id = {tenant}{status}{cursor} \
         ORDER BY {order_column} DESC LIMIT {limit}"
    )
}

fn list_recipient_sql(
    filter: &ListFilter<'_>,
    user_id: &str,
    placeholders: &mut Placeholders,
) -> String {
    let tenant = placeholders.push(filter.tenant_id);
    let recipient = placeholders.push(user_id.to_owned());
    let cursor = cursor_predicate(filter, "r.notification_id", placeholders);
    let status_check = match filter.status {
        Some(status) => format!(
            " CROSS JOIN LATERAL (SELECT 1 FROM notification_states page_state \
               WHERE page_state.id = r.notification_id AND page_state.tenant_id = {tenant} \
               AND page_state.status = {}::notification_status LIMIT 1) in_status",
            placeholders.push(status.as_str())
        ),
        None => String::new(),
    };
    // The page is the recipient's index walked backwards with the LIMIT inside (a status filter
    // probes each row's state as it goes, a LATERAL subquery with LIMIT 1, never flattened into
    // a join); then each of the page's rows is looked up by its key. Every step is fenced so that
    // no plan, custom or generic, can turn it into a walk of the tenant's rows or a merge join with
    // every tenant's states (what a soak once found: statements of 3 to 6 s). The limit is a
    // literal: a parameter would leave a generic plan guessing its size.
    format!(
        "WITH page AS MATERIALIZED ( \
             SELECT r.notification_id AS id FROM notification_recipients r{status_check} \
             WHERE r.tenant_id = {tenant} AND r.user_id = {recipient}{cursor} \
             ORDER BY r.notification_id DESC LIMIT {limit}) \
         SELECT {NOTIFICATION_COLUMNS} FROM page \
         CROSS JOIN LATERAL (SELECT * FROM notifications n WHERE n.id = page.id LIMIT 1) n \
         CROSS JOIN LATERAL (SELECT * FROM notification_states s \
             WHERE s.id = page.id AND s.tenant_id = {tenant} LIMIT 1) s \
         ORDER BY page.id DESC",
        limit = filter.limit
    )
}

row! {
    /// A committed notification on its way to Kafka, whether the fast path publishes it (from the
    /// [`AcceptedNotification`] still in memory) or the relay (read back by [`load_publishable`]):
    /// what its records need, nothing more.
    #[derive(Debug, Clone)]
    pub struct PublishableNotification {
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub user_ids: Vec<String>,
        pub priority: Priority,
        pub accepted_at: DateTime<Utc>,
        /// The accepting request's W3C trace context: the parent of the span that publishes it.
        pub trace_parent: Option<String>,
    }
}

impl PublishableNotification {
    /// The record of one of its recipients.
    pub fn envelope<'a>(&'a self, user_id: &'a str) -> NotificationEnvelope<'a> {
        NotificationEnvelope::new(
            self.id,
            self.tenant_id,
            user_id,
            self.priority,
            self.accepted_at,
        )
    }

    /// Bytes it holds while it waits to be published.
    pub fn weight(&self) -> usize {
        64 + self.trace_parent.as_ref().map_or(0, String::len)
            + self
                .user_ids
                .iter()
                .map(|user_id| user_id.len() + 24)
                .sum::<usize>()
    }
}

impl From<&AcceptedNotification> for PublishableNotification {
    fn from(accepted: &AcceptedNotification) -> PublishableNotification {
        PublishableNotification {
            id: accepted.id,
            tenant_id: accepted.tenant_id,
            user_ids: accepted.notification.user_ids.clone(),
            priority: accepted.notification.priority,
            accepted_at: accepted.accepted_at,
            trace_parent: accepted.trace_parent.clone(),
        }
    }
}

/// The next notifications to publish among `notification_ids`, in acceptance order, after the id
/// `after` (if given), as many as fit in `max_records` recipients (at least one): the relay's memory
/// stays bounded whatever the notifications' sizes.
pub async fn load_publishable(
    database: &Database,
    notification_ids: &[Uuid],
    after: Option<Uuid>,
    max_records: usize,
) -> Result<Vec<PublishableNotification>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT id, tenant_id, user_ids, priority, accepted_at, trace_parent FROM (
    SELECT n.id, n.tenant_id, n.user_ids, n.priority::text AS priority, n.created_at AS accepted_at,
           n.trace_parent,
           sum(cardinality(n.user_ids)) OVER (ORDER BY n.id) - cardinality(n.user_ids) AS before
    FROM unnest($1::uuid[]) AS wanted(id) JOIN notifications n ON n.id = wanted.id
    WHERE $2::uuid IS NULL OR n.id > $2
) numbered
WHERE before < $3
ORDER BY id
"#,
        [
            Value::from(notification_ids.to_vec()),
            Value::from(after),
            Value::from(max_records.max(1) as i64),
        ],
    );
    database
        .run(
            "notifications.load_publishable",
            PublishableNotification::find_by_statement(statement).all(database.connection()),
        )
        .await
}

row! {
    /// What a worker renders deliveries from.
    #[derive(Debug, Clone)]
    pub struct NotificationContent {
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub channels: Vec<Channel>,
        pub subject: Option<String>,
        pub body: String,
        pub data: JsonValue,
        /// Which lane order its deliveries wait in (docs/DESIGN.md, "Priority lanes").
        pub priority: Priority,
        pub created_at: DateTime<Utc>,
        /// Recipients × channels (the largest `i32` for a notification to groups).
        pub deliveries: i32,
        /// About the bytes it holds in memory (computed by PostgreSQL from the stored sizes).
        pub weight: i32,
        /// The accepting request's W3C trace context: the parent of spans about it that no Kafka record
        /// leads to (queued and retried deliveries).
        pub trace_parent: Option<String>,
        /// The template and version it renders, if any (its `subject` and `body` are then empty).
        pub template_id: Option<String>,
        pub template_version: Option<i32>,
        /// Its category, which recipients may have opted out of.
        pub category: Option<String>,
        /// Its tenant lets `high` notifications through recipients' quiet hours.
        pub high_priority_overrides_quiet_hours: bool,
        /// The version of its tenant's routing rules when it was accepted, if the tenant has any.
        pub routing_rules_version: Option<i32>,
    }
}

impl NotificationContent {
    /// Bytes this content takes in memory, about.
    pub fn weight(&self) -> usize {
        usize::try_from(self.weight).unwrap_or(0)
    }
}

/// The content of the notifications that still exist among `notification_ids`.
pub async fn load_content(
    database: &Database,
    notification_ids: &[Uuid],
) -> Result<Vec<NotificationContent>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT n.id, n.tenant_id, n.channels::text[] AS channels, n.subject, n.body, n.data,
       n.priority::text AS priority, n.created_at,
       n.trace_parent, n.template_id, n.template_version, n.category,
       t.high_priority_overrides_quiet_hours, n.routing_rules_version,
       -- A group's members are many: its content is read for each of them.
       CASE WHEN cardinality(n.group_ids) > 0 THEN 2147483647
            ELSE cardinality(n.user_ids) * cardinality(n.channels) END AS deliveries,
       (octet_length(n.body) + coalesce(octet_length(n.subject), 0) + pg_column_size(n.data) + 128)::int4 AS weight
FROM unnest($1::uuid[]) AS wanted(id) JOIN notifications n ON n.id = wanted.id
JOIN tenants t ON t.id = n.tenant_id
"#,
        [Value::from(notification_ids.to_vec())],
    );
    database
        .run(
            "notifications.load_content",
            NotificationContent::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// Deletes idempotency keys older than `window`, at most `limit` per call; returns how many.
pub async fn expire_idempotency_keys(
    database: &Database,
    window: std::time::Duration,
    limit: u64,
) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys
    WHERE created_at < now() - $1 * interval '1 millisecond' LIMIT $2)
"#,
        [
            Value::from(window.as_millis() as i64),
            Value::from(limit as i64),
        ],
    );
    let result = database
        .run(
            "notifications.expire_idempotency_keys",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected())
}
