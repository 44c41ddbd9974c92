//! The status-event outbox (docs/DESIGN.md, "Status events and webhook subscriptions"): triggers
//! on `deliveries` write one row per status change; the worker's relay leases rows, produces them
//! to the events topic and deletes them once the broker acknowledged them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_domain::{Channel, DeliveryStatus, ProviderId};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::columns::row;
use crate::database::{Database, StoreError};

row! {
    /// One status change not yet acknowledged by the broker.
    #[derive(Debug, Clone)]
    pub struct PendingStatusEvent {
        /// Its place in the outbox: the relay publishes in this order.
        pub seq: i64,
        /// The event's id, stable across redelivery.
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub notification_id: Uuid,
        pub delivery_id: Uuid,
        pub user_id: String,
        pub channel: Channel,
        pub provider: ProviderId,
        pub previous_status: Option<DeliveryStatus>,
        pub status: DeliveryStatus,
        pub at: DateTime<Utc>,
    }
}

/// Leases up to `limit` events whose lease is absent or expired to `owner` for `lease`, oldest
/// first. `SKIP LOCKED` and the lease keep two relays off one event.
pub async fn lease_pending(
    database: &Database,
    owner: Uuid,
    lease: Duration,
    limit: u64,
) -> Result<Vec<PendingStatusEvent>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH picked AS MATERIALIZED (
    -- Picked once, at most LIMIT: as an `IN (...)` subquery the planner may run it again per row,
    -- and with SKIP LOCKED each run finds new rows (deliveries::claim_queued).
    SELECT seq FROM status_events
    WHERE lease_until IS NULL OR lease_until < now()
    ORDER BY seq
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE status_events SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
WHERE seq IN (SELECT seq FROM picked)
RETURNING seq, id, tenant_id, notification_id, delivery_id, user_id, channel::text AS channel,
          provider, previous_status::text AS previous_status, status::text AS status, at
"#,
        [
            Value::from(owner),
            Value::from(lease.as_millis() as i64),
            Value::from(limit as i64),
        ],
    );
    let mut events = database
        .run(
            "status_events.lease_pending",
            PendingStatusEvent::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    // UPDATE ... RETURNING does not keep the subquery's order.
    events.sort_by_key(|event| event.seq);
    Ok(events)
}

/// Deletes the events the broker acknowledged.
pub async fn delete_published(database: &Database, seqs: &[i64]) -> Result<u64, StoreError> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "DELETE FROM status_events WHERE seq = ANY($1)",
        [Value::from(seqs.to_vec())],
    );
    let result = database
        .run(
            "status_events.delete_published",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected())
}

/// Events not yet published, and the age of the oldest, for the backlog gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatusEventBacklog {
    pub events: u64,
    pub oldest_age_seconds: f64,
}

pub async fn backlog(database: &Database) -> Result<StatusEventBacklog, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        events: i64,
        oldest_age_seconds: f64,
    }
    let statement = Statement::from_string(
        DatabaseBackend::Postgres,
        r#"
SELECT count(*)::bigint AS events,
       coalesce(extract(epoch FROM now() - min(at)), 0)::float8 AS oldest_age_seconds
FROM status_events
"#,
    );
    let row = database
        .run(
            "status_events.backlog",
            Row::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    Ok(
        row.map_or_else(StatusEventBacklog::default, |row| StatusEventBacklog {
            events: row.events.max(0) as u64,
            oldest_age_seconds: row.oldest_age_seconds.max(0.0),
        }),
    )
}
