//! Deliveries: the worker's admission, claims, outcome records, releases and in-doubt takeovers,
//! and the reads of the API. The protocol is "Delivery (worker)" in docs/DESIGN.md.
//!
//! Every statement that changes a delivery names the state it expects (and, for an owned delivery,
//! the owner session and attempt), so a stale worker can never overwrite a newer owner; the
//! database's trigger refuses any move the domain's transition function refuses.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_domain::{
    AttemptOutcome, Channel, DeliveryProgress, DeliveryStatus, NotificationEvent,
    NotificationStatus, Priority, ProviderId,
};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, FromQueryResult, Statement,
    TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::columns::{self, row};
use crate::database::{Database, StoreError};
use crate::json_parameter;

/// The key of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, FromQueryResult)]
pub struct DeliveryKey {
    pub notification_id: Uuid,
    pub id: Uuid,
}

/// A delivery derived from a Kafka record, as the worker admits it.
#[derive(Debug, Clone, Serialize)]
pub struct NewDelivery {
    pub notification_id: Uuid,
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    pub provider: ProviderId,
    /// Its notification's: where a queued one waits in `delivery_queue`'s order.
    pub priority: Priority,
    /// `Sending` (claimed by this session now), `Queued` (its lane had no room) or `Skipped`.
    pub status: DeliveryStatus,
    /// Why it was skipped.
    pub last_error: Option<String>,
    /// When a `Queued` one is due: later than now for a delivery held until its recipient's quiet
    /// hours end; `None` for now.
    pub due_at: Option<DateTime<Utc>>,
}

row! {
    #[derive(Debug, Clone)]
    struct InsertedRow {
        notification_id: Uuid,
        id: Uuid,
        status: DeliveryStatus,
    }
}

const ADMIT_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        notification_id uuid, id uuid, tenant_id uuid, user_id text, channel channel,
        provider text, priority priority, status delivery_status, last_error text,
        due_at timestamptz)
), cancelled_notifications AS (
    -- Locked `FOR KEY SHARE`: a cancellation in progress (`FOR UPDATE`) is waited for and its
    -- result read, and one that comes later waits for this admission and then cancels what it
    -- inserted. Recorders' counter updates (`FOR NO KEY UPDATE`) do not conflict with this lock.
    SELECT id FROM (
        SELECT id, status FROM notification_states
        WHERE id IN (SELECT notification_id FROM input)
        ORDER BY id FOR KEY SHARE
    ) AS locked
    WHERE status = 'cancelled'
), decided AS (
    -- A record of a cancelled notification never reaches a provider: it is inserted `cancelled`.
    SELECT input.*,
           CASE WHEN input.status IN ('sending', 'queued')
                     AND input.notification_id IN (SELECT id FROM cancelled_notifications)
                THEN 'cancelled'::delivery_status ELSE input.status END AS admitted_status
    FROM input
), inserted AS (
    -- A redelivered record never touches an existing delivery, whatever its state.
    INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status,
                            attempts, owner_session, last_error)
    SELECT notification_id, id, tenant_id, user_id, channel, provider, admitted_status,
           CASE WHEN admitted_status = 'sending' THEN 1 ELSE 0 END,
           CASE WHEN admitted_status = 'sending' THEN $2::uuid END,
           CASE WHEN admitted_status = 'cancelled'
                THEN 'cancelled with its notification before it was sent' ELSE last_error END
    FROM decided
    ON CONFLICT (notification_id, id) DO NOTHING
    RETURNING notification_id, id, status, provider, tenant_id
), queued AS (
    -- One row per delivery, however often the batch lists it: due now in the queue, or held
    -- apart until its recipient's quiet hours end (`deferred_deliveries`, moved by the sweeper).
    INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at)
    SELECT inserted.id, inserted.notification_id, inserted.provider, inserted.tenant_id,
           wanted.priority, now()
    FROM inserted
    JOIN (SELECT DISTINCT ON (notification_id, id) notification_id, id, priority, due_at
          FROM input) AS wanted
      ON wanted.notification_id = inserted.notification_id AND wanted.id = inserted.id
    WHERE inserted.status = 'queued' AND wanted.due_at IS NULL
), deferred AS (
    INSERT INTO deferred_deliveries (delivery_id, notification_id, provider, tenant_id, priority,
                                     due_at)
    SELECT inserted.id, inserted.notification_id, inserted.provider, inserted.tenant_id,
           wanted.priority, wanted.due_at
    FROM inserted
    JOIN (SELECT DISTINCT ON (notification_id, id) notification_id, id, priority, due_at
          FROM input) AS wanted
      ON wanted.notification_id = inserted.notification_id AND wanted.id = inserted.id
    WHERE inserted.status = 'queued' AND wanted.due_at IS NOT NULL
), batch AS (
    INSERT INTO send_batches (id, session_id, notification_ids, delivery_ids)
    SELECT $3, $2, array_agg(notification_id), array_agg(id) FROM inserted
    WHERE status = 'sending' HAVING count(*) > 0
)
SELECT notification_id, id, status::text AS status FROM inserted
"#;

/// What admission inserted: the deliveries now claimed by the session (attempt 1) and how many were
/// queued, skipped or cancelled (their notification was cancelled first). Deliveries that already
/// existed are in none of these.
#[derive(Debug, Default)]
pub struct Admitted {
    pub sending: Vec<DeliveryKey>,
    pub queued: usize,
    pub skipped: usize,
    pub cancelled: usize,
}

/// Inserts the deliveries of a batch of records in one transaction: `sending` ones claimed by
/// `session` and listed in the send batch `send_batch_id`, `queued` ones in the delivery queue, and
/// the `skipped` ones counted into their notifications' states. Sendable deliveries of a cancelled
/// notification are inserted `cancelled` instead, and counted.
pub async fn admit(
    database: &Database,
    session: Uuid,
    send_batch_id: Uuid,
    deliveries: &[NewDelivery],
) -> Result<Admitted, StoreError> {
    if deliveries.is_empty() {
        return Ok(Admitted::default());
    }
    debug_assert!(deliveries.iter().all(|delivery| matches!(
        delivery.status,
        DeliveryStatus::Sending | DeliveryStatus::Queued | DeliveryStatus::Skipped
    )));
    let input = json_parameter(&deliveries)?;
    database
        .run("deliveries.admit", async {
            let transaction = database.connection().begin().await?;
            let inserted = InsertedRow::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                ADMIT_SQL,
                [input, Value::from(session), Value::from(send_batch_id)],
            ))
            .all(&transaction)
            .await?;
            let mut admitted = Admitted::default();
            let mut progress = ProgressDeltas::default();
            for row in &inserted {
                match row.status {
                    DeliveryStatus::Sending => admitted.sending.push(DeliveryKey {
                        notification_id: row.notification_id,
                        id: row.id,
                    }),
                    DeliveryStatus::Queued => admitted.queued += 1,
                    DeliveryStatus::Skipped => {
                        admitted.skipped += 1;
                        progress.add(row.notification_id, DeliveryStatus::Skipped);
                    }
                    DeliveryStatus::Cancelled => {
                        admitted.cancelled += 1;
                        progress.add(row.notification_id, DeliveryStatus::Cancelled);
                    }
                    other => debug_assert!(false, "admission inserted a {other:?} delivery"),
                }
            }
            apply_progress(&transaction, &progress).await?;
            transaction.commit().await?;
            Ok(admitted)
        })
        .await
}

row! {
    /// A delivery a session now owns, with what is needed to render and send it.
    #[derive(Debug, Clone)]
    pub struct ClaimedDelivery {
        pub notification_id: Uuid,
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub user_id: String,
        pub channel: Channel,
        pub attempts: i32,
        /// Attempts made before its current attempt budget (a dead-letter replay starts a new one).
        pub attempt_budget_start: i32,
        /// Claims of this delivery, within its attempt budget, taken over from a worker that stopped
        /// before recording the outcome (its `in_doubt` attempts).
        pub in_doubt_takeovers: i32,
    }
}

impl ClaimedDelivery {
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            notification_id: self.notification_id,
            id: self.id,
        }
    }
}

/// What a claim may take of each tenant: `rooms[i]` of `tenants[i]`, `unlisted` of any other.
#[derive(Debug, Clone, Copy)]
pub struct TenantRoom<'a> {
    pub tenants: &'a [Uuid],
    pub rooms: &'a [usize],
    pub unlisted: usize,
}

impl TenantRoom<'_> {
    /// Every tenant may take the whole claim.
    pub const UNBOUNDED: TenantRoom<'static> = TenantRoom {
        tenants: &[],
        rooms: &[],
        unlisted: usize::MAX >> 1,
    };
}

/// Which priorities a claim takes, from the highest to the lowest (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityBand {
    pub highest: Priority,
    pub lowest: Priority,
}

impl PriorityBand {
    /// `high` only: what a lane's room kept for high priority may take.
    pub const HIGH: PriorityBand = PriorityBand {
        highest: Priority::High,
        lowest: Priority::High,
    };
    /// `normal` and `low`.
    pub const ORDINARY: PriorityBand = PriorityBand {
        highest: Priority::Normal,
        lowest: Priority::Low,
    };
}

/// Tenants one claim takes turns between, at most: each is one index probe to find and one to
/// read; a claim starts at a random point of the tenants with entries, so beyond this many every
/// tenant still comes up in turn, claim after claim.
pub const MAX_TENANTS_PER_CLAIM: i64 = 64;

/// Claims up to `limit` due entries of `provider`'s delivery queue whose priority is in `band`,
/// for `session`, as the send batch `send_batch_id`, taking turns by tenant (docs/DESIGN.md,
/// "Fairness between tenants"): up to [`MAX_TENANTS_PER_CLAIM`] tenants with entries, each giving
/// at most its equal part of `limit` and at most its `room` in the lane, its highest priority
/// first, then by due time. Queue entries whose delivery is no longer waiting are dropped.
pub async fn claim_queued(
    database: &Database,
    session: Uuid,
    provider: ProviderId,
    band: PriorityBand,
    limit: usize,
    send_batch_id: Uuid,
    room: &TenantRoom<'_>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    debug_assert_eq!(room.tenants.len(), room.rooms.len());
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH RECURSIVE turns (tenant_id, first_tenant_id, turn) AS (
    -- A loose index scan of (provider, tenant_id, ...): the first tenant after a random point, then
    -- each next one, wrapping around, until back at the first or MAX_TENANTS_PER_CLAIM are found.
    SELECT start.tenant_id, start.tenant_id, 1
    FROM (SELECT coalesce(
              (SELECT tenant_id FROM delivery_queue WHERE provider = $1 AND tenant_id > $7
               ORDER BY tenant_id LIMIT 1),
              (SELECT tenant_id FROM delivery_queue WHERE provider = $1
               ORDER BY tenant_id LIMIT 1)) AS tenant_id) AS start
    WHERE start.tenant_id IS NOT NULL
  UNION ALL
    SELECT next.tenant_id, turns.first_tenant_id, turns.turn + 1
    FROM turns, LATERAL (SELECT coalesce(
              (SELECT tenant_id FROM delivery_queue WHERE provider = $1 AND tenant_id > turns.tenant_id
               ORDER BY tenant_id LIMIT 1),
              (SELECT tenant_id FROM delivery_queue WHERE provider = $1
               ORDER BY tenant_id LIMIT 1)) AS tenant_id) AS next
    WHERE turns.turn < $8 AND next.tenant_id <> turns.first_tenant_id
), eligible AS MATERIALIZED (
    SELECT turns.tenant_id, turns.turn,
           least(coalesce(room.room, $11), ceil($2::numeric / (SELECT count(*) FROM turns))) AS room
    FROM turns LEFT JOIN unnest($9::uuid[], $10::bigint[]) AS room (tenant_id, room)
      ON room.tenant_id = turns.tenant_id
), picked AS MATERIALIZED (
    -- Each tenant's equal part, from the index in its own order (the enum's order is
    -- high < normal < low). Picked once, here: as an `IN (...)` subquery the planner may run it
    -- again for each row it deletes, and with SKIP LOCKED every run finds new rows, so the claim
    -- took several times LIMIT (measured: 3,936 claimed for 500 wanted).
    SELECT entry.delivery_id
    FROM (
        SELECT entry.delivery_id,
               row_number() OVER (PARTITION BY eligible.tenant_id
                                  ORDER BY entry.priority, entry.due_at) AS place,
               eligible.turn
        FROM eligible CROSS JOIN LATERAL (
            SELECT delivery_id, priority, due_at FROM delivery_queue
            WHERE provider = $1 AND tenant_id = eligible.tenant_id
              AND priority BETWEEN $5::priority AND $6::priority AND due_at <= now()
            ORDER BY priority, due_at
            LIMIT eligible.room::bigint
            FOR UPDATE SKIP LOCKED
        ) AS entry
    ) AS entry
    ORDER BY entry.place, entry.turn
    LIMIT $2
), due AS (
    DELETE FROM delivery_queue WHERE delivery_id IN (SELECT delivery_id FROM picked)
    RETURNING notification_id, delivery_id
), cancelled_notifications AS (
    SELECT id FROM notification_states
    WHERE id IN (SELECT notification_id FROM due) AND status = 'cancelled'
), claimed AS (
    -- Only a delivery waiting to be sent (never a cancelled or final one), of a notification that
    -- is not cancelled.
    UPDATE deliveries d
    SET status = 'sending', owner_session = $3, attempts = d.attempts + 1,
        next_attempt_at = NULL, updated_at = now()
    FROM due
    WHERE d.notification_id = due.notification_id AND d.id = due.delivery_id
      AND d.status IN ('queued', 'retrying')
      AND due.notification_id NOT IN (SELECT id FROM cancelled_notifications)
    RETURNING d.notification_id, d.id, d.tenant_id, d.user_id, d.channel::text AS channel,
              d.attempts, d.attempt_budget_start,
              (SELECT count(*)::integer FROM delivery_attempts a
               WHERE a.notification_id = d.notification_id AND a.delivery_id = d.id
                 AND a.attempt > d.attempt_budget_start AND a.outcome = 'in_doubt')
                  AS in_doubt_takeovers
), withdrawn AS (
    -- Back in the queue after its notification was cancelled (a retry of a delivery that was in
    -- flight, a returned claim): cancelled instead of sent.
    UPDATE deliveries d
    SET status = 'cancelled', owner_session = NULL, next_attempt_at = NULL, updated_at = now(),
        last_error = 'cancelled with its notification before it was sent'
    FROM due
    WHERE d.notification_id = due.notification_id AND d.id = due.delivery_id
      AND d.status IN ('queued', 'retrying')
      AND due.notification_id IN (SELECT id FROM cancelled_notifications)
    RETURNING d.notification_id
), withdrawn_counts AS (
    SELECT notification_id, count(*)::integer AS cancelled FROM withdrawn GROUP BY notification_id
), withdrawn_locked AS (
    -- In id order, like every transaction that touches several notifications' counters.
    SELECT id FROM notification_states
    WHERE id IN (SELECT notification_id FROM withdrawn_counts) ORDER BY id FOR NO KEY UPDATE
), withdrawn_counted AS (
    -- The status is `cancelled` already and stays so (NotificationStatus::transition): only the
    -- counter moves.
    UPDATE notification_states s
    SET deliveries_cancelled = s.deliveries_cancelled + withdrawn_counts.cancelled, updated_at = now()
    FROM withdrawn_counts JOIN withdrawn_locked ON withdrawn_locked.id = withdrawn_counts.notification_id
    WHERE s.id = withdrawn_counts.notification_id
), batch AS (
    INSERT INTO send_batches (id, session_id, notification_ids, delivery_ids)
    SELECT $4, $3, array_agg(notification_id), array_agg(id) FROM claimed HAVING count(*) > 0
)
SELECT * FROM claimed
"#,
        [
            columns::bind(provider),
            Value::from(limit as i64),
            Value::from(session),
            Value::from(send_batch_id),
            columns::bind(band.highest),
            columns::bind(band.lowest),
            // Where this claim's turns start: anywhere, so that every tenant comes first as often.
            Value::from(Uuid::new_v4()),
            Value::from(MAX_TENANTS_PER_CLAIM),
            Value::from(room.tenants.to_vec()),
            Value::from(
                room.rooms
                    .iter()
                    .map(|&room| room as i64)
                    .collect::<Vec<i64>>(),
            ),
            Value::from(room.unlisted as i64),
        ],
    );
    database
        .run(
            "deliveries.claim_queued",
            ClaimedDelivery::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// The outcome of one provider call, to record.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedAttempt {
    pub notification_id: Uuid,
    pub id: Uuid,
    pub attempt: i32,
    /// The delivery's new status: `Sent`, `Retrying` or `Failed`.
    pub status: DeliveryStatus,
    pub outcome: AttemptOutcome,
    pub provider: ProviderId,
    pub provider_message_id: Option<String>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    /// For `Retrying`: how long from now (database clock) the retry is due.
    pub retry_delay_ms: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

const RECORD_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        notification_id uuid, id uuid, attempt integer, status delivery_status,
        outcome attempt_outcome, provider text, provider_message_id text, http_status integer,
        error text, retry_delay_ms bigint, started_at timestamptz, finished_at timestamptz)
), updated AS (
    -- Only the owner, on the attempt it made: a session whose claim was taken over changes nothing.
    UPDATE deliveries d
    SET status = input.status,
        -- A sent delivery names who sent it (a failover provider, SMTP, may stand in for the
        -- lane's own); until then `provider` is the lane that owns it, which queues its retries.
        provider = CASE WHEN input.status = 'sent' THEN input.provider ELSE d.provider END,
        provider_message_id = coalesce(input.provider_message_id, d.provider_message_id),
        last_error = input.error, owner_session = NULL,
        next_attempt_at = CASE WHEN input.status = 'retrying'
                               THEN now() + input.retry_delay_ms * interval '1 millisecond' END,
        updated_at = now()
    FROM input
    WHERE d.notification_id = input.notification_id AND d.id = input.id
      AND d.status = 'sending' AND d.owner_session = $2 AND d.attempts = input.attempt
    RETURNING d.notification_id, d.id, d.status, d.provider, d.next_attempt_at, d.tenant_id,
              d.user_id, d.channel, d.attempts, d.last_error
), dead_letters AS (
    -- Failed for good: a dead letter the tenant can list and replay (docs/DESIGN.md, "Dead
    -- letters"), written with the failure itself.
    INSERT INTO dead_letters (tenant_id, notification_id, delivery_id, user_id, channel, provider,
                              attempts, last_error)
    SELECT tenant_id, notification_id, id, user_id, channel, provider, attempts, last_error
    FROM updated WHERE updated.status = 'failed'
), attempts AS (
    -- Every call that happened is history, whoever owns the delivery now.
    INSERT INTO delivery_attempts (notification_id, delivery_id, attempt, outcome, provider,
                                   http_status, error, provider_message_id, started_at, finished_at)
    SELECT notification_id, id, attempt, outcome, provider, http_status, error,
           provider_message_id, started_at, finished_at
    FROM input
    ON CONFLICT DO NOTHING
), requeued AS (
    INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at)
    SELECT updated.id, updated.notification_id, updated.provider, updated.tenant_id,
           coalesce(n.priority, 'normal'), updated.next_attempt_at
    -- Never lose the entry, even without its notification (parked later as such).
    FROM updated LEFT JOIN notifications n ON n.id = updated.notification_id
    WHERE updated.status = 'retrying'
    ON CONFLICT (delivery_id) DO UPDATE SET due_at = excluded.due_at
), finished AS (
    DELETE FROM send_batches WHERE id = ANY($3)
)
SELECT notification_id, id, status::text AS status FROM updated
"#;

/// What a record transaction changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Deliveries moved by this record; the others had been taken over by another session.
    pub applied: Vec<DeliveryKey>,
    /// Notifications that became final.
    pub notifications_finished: usize,
}

/// Records attempts made by `session` in one transaction: the deliveries' new states, the attempt
/// rows, retries back into the queue, the send batches that are now complete, and the counters and
/// statuses of the notifications concerned.
pub async fn record(
    database: &Database,
    session: Uuid,
    attempts: &[RecordedAttempt],
    completed_send_batches: &[Uuid],
) -> Result<RecordSummary, StoreError> {
    if attempts.is_empty() && completed_send_batches.is_empty() {
        return Ok(RecordSummary::default());
    }
    let input = json_parameter(&attempts)?;
    database
        .run("deliveries.record", async {
            let transaction = database.connection().begin().await?;
            let updated = InsertedRow::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                RECORD_SQL,
                [
                    input,
                    Value::from(session),
                    Value::from(completed_send_batches.to_vec()),
                ],
            ))
            .all(&transaction)
            .await?;
            let mut progress = ProgressDeltas::default();
            for row in &updated {
                if row.status.is_final() {
                    progress.add(row.notification_id, row.status);
                }
            }
            let notifications_finished = apply_progress(&transaction, &progress).await?;
            transaction.commit().await?;
            Ok(RecordSummary {
                applied: updated
                    .iter()
                    .map(|row| DeliveryKey {
                        notification_id: row.notification_id,
                        id: row.id,
                    })
                    .collect(),
                notifications_finished,
            })
        })
        .await
}

/// Returns unsent claims of `session` to the queue, due in `due_in` (graceful shutdown, a lane that
/// must drop what it holds, a destination that holds its share already), and deletes the send
/// batches that are then complete. Returns how many were released.
pub async fn release_unsent(
    database: &Database,
    session: Uuid,
    claims: &[(DeliveryKey, i32)],
    completed_send_batches: &[Uuid],
    due_in: std::time::Duration,
) -> Result<u64, StoreError> {
    #[derive(Serialize)]
    struct Claim {
        notification_id: Uuid,
        id: Uuid,
        attempt: i32,
    }
    let claims: Vec<Claim> = claims
        .iter()
        .map(|(key, attempt)| Claim {
            notification_id: key.notification_id,
            id: key.id,
            attempt: *attempt,
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(notification_id uuid, id uuid, attempt integer)
), released AS (
    -- Never sent: the claim does not count as an attempt.
    UPDATE deliveries d
    SET status = 'queued', owner_session = NULL, attempts = d.attempts - 1, updated_at = now()
    FROM input
    WHERE d.notification_id = input.notification_id AND d.id = input.id
      AND d.status = 'sending' AND d.owner_session = $2 AND d.attempts = input.attempt
    RETURNING d.notification_id, d.id, d.provider, d.tenant_id
), queued AS (
    INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at)
    SELECT released.id, released.notification_id, released.provider, released.tenant_id,
           coalesce(n.priority, 'normal'), now() + make_interval(secs => $4::double precision / 1000)
    -- Never lose the entry, even without its notification (parked later as such).
    FROM released LEFT JOIN notifications n ON n.id = released.notification_id
    ON CONFLICT (delivery_id) DO NOTHING
), finished AS (
    DELETE FROM send_batches WHERE id = ANY($3)
)
SELECT count(*)::bigint AS released FROM released
"#,
        [
            json_parameter(&claims)?,
            Value::from(session),
            Value::from(completed_send_batches.to_vec()),
            Value::from(i64::try_from(due_in.as_millis()).unwrap_or(i64::MAX)),
        ],
    );
    let released = database
        .scalar("deliveries.release_unsent", statement)
        .await?;
    Ok(released.max(0) as u64)
}

/// Takes over the claims of sessions whose heartbeat is older than `lease` (database clock), up to
/// `limit` send batches: deliveries still `sending` for the dead owner become `queued` again, each
/// with an `in_doubt` attempt (the call may or may not have reached the provider), and are sent again
/// with the same reference. Dead sessions without batches are deleted. Returns the deliveries put
/// back in the queue.
pub async fn take_over_dead_sessions(
    database: &Database,
    lease: Duration,
    limit: u64,
) -> Result<u64, StoreError> {
    // The takeover touches every partition of `deliveries`; ask the small table first.
    let dead_sessions = database
        .scalar(
            "deliveries.count_dead_sessions",
            Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT count(*) FROM worker_sessions WHERE heartbeat_at < now() - $1 * interval '1 millisecond'",
                [Value::from(lease.as_millis() as i64)],
            ),
        )
        .await?;
    if dead_sessions == 0 {
        return Ok(0);
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH dead AS (
    -- Locked: a heartbeat racing this statement either lands first (and the row is no longer
    -- dead when re-checked) or finds the session expired and gives it up.
    SELECT id FROM worker_sessions WHERE heartbeat_at < now() - $1 * interval '1 millisecond'
    FOR UPDATE SKIP LOCKED
), picked AS MATERIALIZED (
    -- Picked once (see `claim_queued`): at most LIMIT batches.
    SELECT id FROM send_batches WHERE session_id IN (SELECT id FROM dead)
    LIMIT $2 FOR UPDATE SKIP LOCKED
), batches AS (
    DELETE FROM send_batches WHERE id IN (SELECT id FROM picked)
    RETURNING session_id, notification_ids, delivery_ids
), claims AS (
    SELECT session_id, unnest(notification_ids) AS notification_id, unnest(delivery_ids) AS id
    FROM batches
), released AS (
    UPDATE deliveries d
    SET status = 'queued', owner_session = NULL, updated_at = now(),
        last_error = 'in doubt: the worker sending it stopped before recording the outcome'
    FROM claims
    WHERE d.notification_id = claims.notification_id AND d.id = claims.id
      AND d.status = 'sending' AND d.owner_session = claims.session_id
    RETURNING d.notification_id, d.id, d.provider, d.tenant_id, d.attempts
), attempts AS (
    INSERT INTO delivery_attempts (notification_id, delivery_id, attempt, outcome, provider, error,
                                   started_at, finished_at)
    SELECT notification_id, id, attempts, 'in_doubt', provider,
           'the worker sending it stopped before recording the outcome', now(), now()
    FROM released
    ON CONFLICT DO NOTHING
), queued AS (
    INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at)
    SELECT released.id, released.notification_id, released.provider, released.tenant_id,
           coalesce(n.priority, 'normal'), now()
    -- Never lose the entry, even without its notification (parked later as such).
    FROM released LEFT JOIN notifications n ON n.id = released.notification_id
    ON CONFLICT (delivery_id) DO NOTHING
)
SELECT count(*)::bigint AS in_doubt FROM released
"#,
        [
            Value::from(lease.as_millis() as i64),
            Value::from(limit as i64),
        ],
    );
    let taken_over = database
        .scalar("deliveries.take_over_dead_sessions", statement)
        .await?;
    let forget = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
DELETE FROM worker_sessions s
WHERE s.heartbeat_at < now() - $1 * interval '1 millisecond'
  AND NOT EXISTS (SELECT 1 FROM send_batches b WHERE b.session_id = s.id)
"#,
        [Value::from(lease.as_millis() as i64)],
    );
    database
        .run(
            "deliveries.forget_dead_sessions",
            database.connection().execute(forget),
        )
        .await?;
    Ok(taken_over.max(0) as u64)
}

/// Per notification, how many deliveries became final in one transaction, and how, and how many
/// of its group expansions ended (a negative `expansions_pending`).
#[derive(Debug, Default)]
pub(crate) struct ProgressDeltas(BTreeMap<Uuid, DeliveryProgress>);

impl ProgressDeltas {
    /// One of the notification's group expansions is done.
    pub(crate) fn expansion_finished(&mut self, notification_id: Uuid) {
        self.0
            .entry(notification_id)
            .or_default()
            .expansions_pending -= 1;
    }

    fn add(&mut self, notification_id: Uuid, status: DeliveryStatus) {
        let delta = self.0.entry(notification_id).or_default();
        match status {
            DeliveryStatus::Sent => delta.sent += 1,
            DeliveryStatus::Failed => delta.failed += 1,
            DeliveryStatus::Skipped => delta.skipped += 1,
            DeliveryStatus::Cancelled => delta.cancelled += 1,
            other => debug_assert!(false, "{other:?} is not a first final status"),
        }
    }
}

/// Adds the deltas to the notifications' counters and moves their statuses with the domain's
/// transition function. Rows are locked in id order first, so two transactions never deadlock.
/// Returns how many notifications became final.
pub(crate) async fn apply_progress(
    transaction: &DatabaseTransaction,
    deltas: &ProgressDeltas,
) -> Result<usize, DbErr> {
    row! {
        struct StateRow {
            id: Uuid,
            status: NotificationStatus,
            deliveries_expected: i32,
            deliveries_sent: i32,
            deliveries_failed: i32,
            deliveries_skipped: i32,
            deliveries_cancelled: i32,
            expansions_pending: i32,
        }
    }
    #[derive(Serialize)]
    struct NewState {
        id: Uuid,
        status: NotificationStatus,
        sent: i32,
        failed: i32,
        skipped: i32,
        cancelled: i32,
        expansions_pending: i32,
    }
    if deltas.0.is_empty() {
        return Ok(0);
    }
    // BTreeMap keys are sorted: the lock order.
    let ids: Vec<Uuid> = deltas.0.keys().copied().collect();
    let current = StateRow::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT id, status::text AS status, deliveries_expected, deliveries_sent, deliveries_failed,
       deliveries_skipped, deliveries_cancelled, expansions_pending
FROM notification_states WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE
"#,
        [Value::from(ids)],
    ))
    .all(transaction)
    .await?;
    let mut finished = 0;
    let mut updates = Vec::with_capacity(current.len());
    for row in current {
        let delta = deltas.0[&row.id];
        let progress = DeliveryProgress {
            expected: row.deliveries_expected,
            sent: row.deliveries_sent + delta.sent,
            failed: row.deliveries_failed + delta.failed,
            skipped: row.deliveries_skipped + delta.skipped,
            cancelled: row.deliveries_cancelled + delta.cancelled,
            expansions_pending: row.expansions_pending + delta.expansions_pending,
        };
        if progress.finished() > progress.expected {
            // Cannot happen while each delivery becomes final once. If it did, the CHECK constraint
            // would fail this transaction on every retry: leave this notification alone, loudly.
            tracing::error!(notification_id = %row.id, ?progress, "more final deliveries than expected");
            debug_assert!(false, "more final deliveries than expected: {progress:?}");
            continue;
        }
        let old_status = row.status;
        let status = match old_status.transition(NotificationEvent::Progressed(progress)) {
            Ok(status) => status,
            Err(refused) => {
                tracing::error!(notification_id = %row.id, %refused, "status transition refused");
                old_status
            }
        };
        if status.is_final() && !old_status.is_final() {
            finished += 1;
        }
        updates.push(NewState {
            id: row.id,
            status,
            sent: progress.sent,
            failed: progress.failed,
            skipped: progress.skipped,
            cancelled: progress.cancelled,
            expansions_pending: progress.expansions_pending.max(0),
        });
    }
    transaction
        .execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"
UPDATE notification_states s
SET status = new.status, deliveries_sent = new.sent, deliveries_failed = new.failed,
    deliveries_skipped = new.skipped, deliveries_cancelled = new.cancelled,
    expansions_pending = new.expansions_pending, updated_at = now()
FROM jsonb_to_recordset($1::jsonb) AS new(id uuid, status notification_status, sent integer,
                                          failed integer, skipped integer, cancelled integer,
                                          expansions_pending integer)
WHERE s.id = new.id
"#,
            [json_parameter(&updates).map_err(|error| DbErr::Json(error.to_string()))?],
        ))
        .await?;
    Ok(finished)
}

row! {
    /// One delivery as the API shows it.
    #[derive(Debug, Clone, Serialize)]
    pub struct DeliveryRow {
        pub id: Uuid,
        pub user_id: String,
        pub channel: Channel,
        pub status: DeliveryStatus,
        pub attempts: i32,
        pub provider: ProviderId,
        pub provider_message_id: Option<String>,
        pub last_error: Option<String>,
        pub next_attempt_at: Option<DateTime<Utc>>,
        pub updated_at: DateTime<Utc>,
    }
}

/// A page of a notification's deliveries in id order, after the delivery `after_id`.
pub async fn deliveries_of(
    database: &Database,
    notification_id: Uuid,
    after_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT id, user_id, channel::text AS channel, status::text AS status, attempts, provider,
       provider_message_id, last_error, next_attempt_at, updated_at
FROM deliveries
WHERE notification_id = $1 AND ($2::uuid IS NULL OR id > $2)
ORDER BY id LIMIT $3
"#,
        [
            Value::from(notification_id),
            Value::from(after_id),
            Value::from(limit as i64),
        ],
    );
    database
        .run(
            "deliveries.page",
            DeliveryRow::find_by_statement(statement).all(database.connection()),
        )
        .await
}

/// Moves up to `limit` deferred deliveries whose time has come (their recipient's quiet hours are
/// over) into the delivery queue, due now; returns how many. Rows another sweeper or a cancellation
/// is taking are skipped, never waited for.
pub async fn release_due_deferred(database: &Database, limit: u64) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
WITH due AS (
    DELETE FROM deferred_deliveries WHERE delivery_id IN (
        SELECT delivery_id FROM deferred_deliveries WHERE due_at <= now()
        ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING delivery_id, notification_id, provider, tenant_id, priority
)
INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at)
SELECT delivery_id, notification_id, provider, tenant_id, priority, now() FROM due
ON CONFLICT (delivery_id) DO NOTHING
"#,
        [Value::from(limit as i64)],
    );
    let result = database
        .run(
            "deliveries.release_due_deferred",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected())
}
