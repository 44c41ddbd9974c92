//! Status events waiting to be sent to a webhook subscription: one row per (subscription, event),
//! written by the worker's events consumer, claimed by its dispatcher, deleted once the subscriber
//! answered 2xx, rescheduled after a retryable failure and parked after the last attempt (docs/
//! DESIGN.md, "Status events and webhook subscriptions").
//!
//! Durable retries are what keep one slow or failing subscriber from holding anything else back:
//! the consumer's only side effect is the insert, so its partitions never wait on an endpoint.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, StoreError};
use crate::json_parameter;

/// One event for one subscription.
#[derive(Debug, Clone, Serialize)]
pub struct NewSend {
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    /// The event's JSON exactly as produced to the topic.
    pub payload: String,
}

/// What [`enqueue`] stored and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct Enqueued {
    pub stored: i64,
    /// Events not stored because their subscription's backlog was full.
    pub dropped: i64,
}

/// Stores `sends`, skipping subscriptions deleted meanwhile and (event, subscription) pairs already
/// stored (a redelivered record), and dropping what would take a subscription's backlog (its sends
/// not parked) beyond `max_pending_per_subscription`: those are counted in the subscription's
/// `dropped_events`, and `backlog_full_since` marks it until it takes events again. Two batches for
/// one subscription at once may each see the other's rows missing: the bound can be passed by one
/// batch, never more.
pub async fn enqueue(
    database: &Database,
    sends: &[NewSend],
    max_pending_per_subscription: u64,
) -> Result<Enqueued, StoreError> {
    if sends.is_empty() {
        return Ok(Enqueued::default());
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS input(subscription_id uuid, event_id uuid, payload text)
), backlog AS (
    -- Each subscription's sends not parked, counted on `webhook_event_sends_pending`.
    SELECT subscription.id,
           (SELECT count(*) FROM webhook_event_sends send
            WHERE send.subscription_id = subscription.id AND send.parked_at IS NULL) AS pending
    FROM webhook_subscriptions subscription
    WHERE subscription.id IN (SELECT DISTINCT subscription_id FROM input)
), new_input AS (
    -- A redelivered event already stored is neither stored again nor dropped.
    SELECT input.*, backlog.pending,
           row_number() OVER (PARTITION BY input.subscription_id ORDER BY input.event_id) AS place
    FROM input JOIN backlog ON backlog.id = input.subscription_id
    WHERE NOT EXISTS (SELECT 1 FROM webhook_event_sends stored
                      WHERE stored.subscription_id = input.subscription_id
                        AND stored.event_id = input.event_id)
), stored AS (
    INSERT INTO webhook_event_sends (subscription_id, event_id, payload)
    SELECT subscription_id, event_id, payload FROM new_input WHERE pending + place <= $2
    ON CONFLICT (subscription_id, event_id) DO NOTHING
    RETURNING subscription_id
), dropped AS (
    SELECT subscription_id, count(*) AS dropped FROM new_input WHERE pending + place > $2
    GROUP BY subscription_id
), marked AS (
    UPDATE webhook_subscriptions subscription
    SET dropped_events = subscription.dropped_events + coalesce(dropped.dropped, 0),
        backlog_full_since = CASE WHEN dropped.dropped IS NULL THEN NULL
                                  ELSE coalesce(subscription.backlog_full_since, now()) END
    FROM backlog LEFT JOIN dropped ON dropped.subscription_id = backlog.id
    WHERE subscription.id = backlog.id
      AND (dropped.dropped IS NOT NULL OR subscription.backlog_full_since IS NOT NULL)
)
SELECT (SELECT count(*) FROM stored) AS stored,
       (SELECT coalesce(sum(dropped), 0)::bigint FROM dropped) AS dropped
"#,
        [
            json_parameter(sends)?,
            Value::from(i64::try_from(max_pending_per_subscription).unwrap_or(i64::MAX)),
        ],
    );
    let enqueued = database
        .run(
            "webhook_event_sends.enqueue",
            Enqueued::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    Ok(enqueued.unwrap_or_default())
}

/// A send claimed by one dispatcher, with what it needs to sign and post it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ClaimedSend {
    pub subscription_id: Uuid,
    /// The subscription's tenant: its sends in flight together are bounded too.
    pub tenant_id: Uuid,
    pub event_id: Uuid,
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempts: i32,
    pub url: String,
    pub secret: String,
}

/// The statement of [`claim_due`] (public for the test that reads its plan).
pub const CLAIM_DUE: &str = r#"
WITH room AS (
    SELECT * FROM unnest($5::uuid[], $6::int[]) AS room(subscription_id, free)
), tenant_room AS (
    SELECT * FROM unnest($7::uuid[], $8::int[]) AS tenant_room(tenant_id, free)
), due AS (
    SELECT send.subscription_id, send.event_id, send.due_at, subscription.tenant_id,
           coalesce(tenant_room.free, $9) AS tenant_free
    FROM webhook_subscriptions subscription
    LEFT JOIN room ON room.subscription_id = subscription.id
    LEFT JOIN tenant_room ON tenant_room.tenant_id = subscription.tenant_id
    CROSS JOIN LATERAL (
        SELECT candidate.subscription_id, candidate.event_id, candidate.due_at
        FROM webhook_event_sends candidate
        WHERE candidate.subscription_id = subscription.id AND candidate.parked_at IS NULL
          AND candidate.due_at <= now()
          AND (candidate.lease_until IS NULL OR candidate.lease_until < now())
        ORDER BY candidate.due_at
        LIMIT greatest(least(coalesce(room.free, $4), coalesce(tenant_room.free, $9)), 0)
    ) send
), within_tenant_room AS (
    SELECT ranked.subscription_id, ranked.event_id, ranked.due_at
    FROM (SELECT due.*, row_number() OVER (PARTITION BY due.tenant_id ORDER BY due.due_at) AS tenant_rank
          FROM due) ranked
    WHERE ranked.tenant_rank <= ranked.tenant_free
), chosen AS (
    SELECT send.subscription_id, send.event_id
    FROM webhook_event_sends send
    JOIN (SELECT subscription_id, event_id FROM within_tenant_room ORDER BY due_at LIMIT $3) fair
      ON fair.subscription_id = send.subscription_id AND fair.event_id = send.event_id
    FOR UPDATE OF send SKIP LOCKED
), claimed AS (
    UPDATE webhook_event_sends send
    SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond',
        attempts = send.attempts + 1
    FROM chosen
    WHERE send.subscription_id = chosen.subscription_id AND send.event_id = chosen.event_id
    RETURNING send.subscription_id, send.event_id, send.payload, send.attempts, send.due_at
)
SELECT claimed.subscription_id, subscription.tenant_id, claimed.event_id, claimed.payload,
       claimed.attempts, subscription.url, subscription.secret
FROM claimed JOIN webhook_subscriptions subscription ON subscription.id = claimed.subscription_id
ORDER BY claimed.due_at
"#;

/// What a dispatcher may still take, per subscription and per tenant: the subscriptions and
/// tenants with sends in flight here, each with its remaining room; every other one may take the
/// whole `per_subscription` / `per_tenant`.
pub struct ClaimRooms<'a> {
    pub per_subscription: u64,
    pub busy_subscriptions: &'a [Uuid],
    pub subscription_rooms: &'a [i32],
    pub per_tenant: u64,
    pub busy_tenants: &'a [Uuid],
    pub tenant_rooms: &'a [i32],
}

/// Claims up to `limit` due sends for `lease`, oldest first, within `rooms`: at most
/// `per_subscription` of any one subscription and `per_tenant` of any one tenant's subscriptions
/// together, less what each has in flight here. The attempt is counted at the claim: a dispatcher
/// that dies mid-send has used it.
pub async fn claim_due(
    database: &Database,
    owner: Uuid,
    lease: Duration,
    limit: u64,
    rooms: ClaimRooms<'_>,
) -> Result<Vec<ClaimedSend>, StoreError> {
    debug_assert_eq!(
        rooms.busy_subscriptions.len(),
        rooms.subscription_rooms.len()
    );
    debug_assert_eq!(rooms.busy_tenants.len(), rooms.tenant_rooms.len());
    // Each subscription's oldest due sends, read in order from `webhook_event_sends_pending` (a
    // probe per subscription, never a sort of every due send: a subscriber's backlog of millions
    // costs its own probe only), then each tenant's oldest of those within its room, then the
    // oldest of all; the rows are locked after (SKIP LOCKED: another dispatcher's claim is left
    // to it).
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        CLAIM_DUE,
        [
            Value::from(owner),
            Value::from(lease.as_millis() as i64),
            Value::from(limit as i64),
            Value::from(rooms.per_subscription as i64),
            Value::from(rooms.busy_subscriptions.to_vec()),
            Value::from(rooms.subscription_rooms.to_vec()),
            Value::from(rooms.busy_tenants.to_vec()),
            Value::from(rooms.tenant_rooms.to_vec()),
            Value::from(rooms.per_tenant as i64),
        ],
    );
    database
        .run(
            "webhook_event_sends.claim_due",
            ClaimedSend::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// The subscriber took it: the send is done. Whoever holds it now (a dispatcher whose lease ran
/// out may learn of the success only after another claimed it): the event was received, so no
/// further attempt is wanted.
pub async fn complete(
    database: &Database,
    subscription_id: Uuid,
    event_id: Uuid,
) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "DELETE FROM webhook_event_sends WHERE subscription_id = $1 AND event_id = $2",
        [Value::from(subscription_id), Value::from(event_id)],
    );
    database
        .run(
            "webhook_event_sends.complete",
            database.connection().execute(statement),
        )
        .await?;
    Ok(())
}

/// What becomes of a send that did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Unsent {
    /// Due again after the delay.
    RetryAfter(Duration),
    /// No more attempts: kept, parked, for an operator.
    Park,
}

/// Records the failure of the attempt numbered `attempt`, only if the send is still that
/// attempt's: a dispatcher whose lease ran out must not clear the lease of the one that claimed it
/// since (a third would then send it too) nor park a retry under way.
pub async fn record_failure(
    database: &Database,
    subscription_id: Uuid,
    event_id: Uuid,
    attempt: i32,
    unsent: Unsent,
    error: &str,
) -> Result<(), StoreError> {
    let (delay_ms, park) = match unsent {
        Unsent::RetryAfter(delay) => (delay.as_millis() as i64, false),
        Unsent::Park => (0, true),
    };
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
UPDATE webhook_event_sends
SET due_at = now() + $3 * interval '1 millisecond', lease_owner = NULL, lease_until = NULL,
    last_error = left($4, 1000), parked_at = CASE WHEN $5 THEN now() END
WHERE subscription_id = $1 AND event_id = $2 AND attempts = $6
"#,
        [
            Value::from(subscription_id),
            Value::from(event_id),
            Value::from(delay_ms),
            Value::from(error.replace('\0', "")),
            Value::from(park),
            Value::from(attempt),
        ],
    );
    database
        .run(
            "webhook_event_sends.record_failure",
            database.connection().execute(statement),
        )
        .await?;
    Ok(())
}

/// Sends parked after their last attempt.
pub async fn count_parked(database: &Database) -> Result<u64, StoreError> {
    let statement = Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT count(*)::bigint FROM webhook_event_sends WHERE parked_at IS NOT NULL",
    );
    Ok(database
        .scalar("webhook_event_sends.count_parked", statement)
        .await?
        .max(0) as u64)
}

/// Deletes sends parked longer than `age` ago: parked sends are kept for operators, not forever.
pub async fn delete_parked_before(database: &Database, age: Duration) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "DELETE FROM webhook_event_sends \
         WHERE parked_at IS NOT NULL AND parked_at < now() - $1 * interval '1 millisecond'",
        [Value::from(age.as_millis() as i64)],
    );
    let result = database
        .run(
            "webhook_event_sends.delete_parked_before",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected())
}
