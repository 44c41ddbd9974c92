//! Tenants' webhook subscriptions to delivery status events: created, listed and deleted by the
//! API, read by the worker (docs/DESIGN.md, "Status events and webhook subscriptions").
//!
//! The signing secret is stored as given: it must sign every event, so it cannot be hashed. It is
//! answered once, at creation, and read back only by the worker's sender.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, StoreError};

/// A subscription as the API shows it: never with its secret.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct SubscriptionView {
    pub id: Uuid,
    pub url: String,
    /// `delivery.<status>` names, or `*`.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Events waiting to be sent to it (retries included, parked ones not).
    pub pending_events: i64,
    /// Events it did not take because its backlog was full.
    pub dropped_events: i64,
    /// Since when its backlog has been full (events are being dropped); `None` while it takes them.
    pub backlog_full_since: Option<DateTime<Utc>>,
}

/// What creating a subscription came to.
#[derive(Debug)]
pub enum Created {
    Created(SubscriptionView),
    /// The tenant already holds the most subscriptions allowed.
    LimitReached,
}

/// Creates a subscription unless the tenant already holds `max_per_tenant`. The tenant's row is
/// locked first, so two concurrent creations cannot both pass the count.
pub async fn create(
    database: &Database,
    tenant_id: Uuid,
    url: &str,
    events: &[String],
    secret: &str,
    max_per_tenant: u64,
) -> Result<Created, StoreError> {
    let id = Uuid::now_v7();
    database
        .run("webhook_subscriptions.create", async {
            let transaction = database.connection().begin().await?;
            transaction
                .execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
                    [Value::from(tenant_id)],
                ))
                .await?;
            // A new statement, a new snapshot: it sees every subscription committed before the lock.
            let created = SubscriptionView::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                r#"
INSERT INTO webhook_subscriptions (id, tenant_id, url, event_types, secret)
SELECT $1, $2, $3, $4, $5
WHERE (SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $2) < $6
RETURNING id, url, event_types AS events, created_at, 0::bigint AS pending_events,
          dropped_events, backlog_full_since
"#,
                [
                    Value::from(id),
                    Value::from(tenant_id),
                    Value::from(url),
                    Value::from(events.to_vec()),
                    Value::from(secret),
                    Value::from(max_per_tenant as i64),
                ],
            ))
            .one(&transaction)
            .await?;
            transaction.commit().await?;
            Ok(match created {
                Some(view) => Created::Created(view),
                None => Created::LimitReached,
            })
        })
        .await
}

/// The tenant's subscriptions, oldest first.
pub async fn list(
    database: &Database,
    tenant_id: Uuid,
) -> Result<Vec<SubscriptionView>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT subscription.id, subscription.url, subscription.event_types AS events,
       subscription.created_at, subscription.dropped_events, subscription.backlog_full_since,
       (SELECT count(*) FROM webhook_event_sends send
        WHERE send.subscription_id = subscription.id AND send.parked_at IS NULL) AS pending_events
FROM webhook_subscriptions subscription
WHERE subscription.tenant_id = $1 ORDER BY subscription.created_at, subscription.id
"#,
        [Value::from(tenant_id)],
    );
    database
        .run(
            "webhook_subscriptions.list",
            SubscriptionView::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// Deletes one of the tenant's subscriptions and its pending sends; false if it had none by `id`.
pub async fn delete(database: &Database, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
        [Value::from(tenant_id), Value::from(id)],
    );
    let result = database
        .run(
            "webhook_subscriptions.delete",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected() > 0)
}

/// A subscription as the worker matches events against it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct SubscriptionFilter {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub events: Vec<String>,
}

/// Every subscription of `tenant_ids`.
pub async fn filters_of_tenants(
    database: &Database,
    tenant_ids: &[Uuid],
) -> Result<Vec<SubscriptionFilter>, StoreError> {
    if tenant_ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT tenant_id, id, event_types AS events FROM webhook_subscriptions
WHERE tenant_id = ANY($1)
"#,
        [Value::from(tenant_ids.to_vec())],
    );
    database
        .run(
            "webhook_subscriptions.filters_of_tenants",
            SubscriptionFilter::find_by_statement(statement).all(database.connection()),
        )
        .await
}
