//! The worker's side of groups: claiming a group's fan-out for a notification, planning it page by
//! page, and finishing it (docs/DESIGN.md, "Groups: fan-out in the worker").
//!
//! An expansion is a row of `group_expansions`, written by the acceptance statement itself. Its
//! owner plans a page of members in one transaction (recipients recorded, deliveries expected
//! counted, the newly added recipients kept in `unproduced`), produces their records, and only then
//! clears `unproduced`. An owner that dies in between leaves `unproduced` for the next owner, who
//! produces those records again; admission ignores deliveries that exist already. So every member
//! gets its deliveries once, and `deliveries_expected` is exact.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_domain::{NotificationStatus, Priority};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::columns::row;
use crate::database::{Database, Finish, StoreError};
use crate::deliveries::{apply_progress, ProgressDeltas};
use crate::statement;

/// Serializes the claims of every worker, so that "one expansion per tenant at a time" is exact:
/// two claims running at once could each see the tenant idle. Claims are rare (each worker's
/// poll), so the lock costs nothing that matters.
const CLAIM_LOCK: i64 = 0x6865_7261_6c64_0016; // "herald" and issue 16

/// Which expansion: a notification and one of its groups (Herald's id for the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpansionKey {
    pub notification_id: Uuid,
    pub group_id: Uuid,
}

row! {
    /// An expansion this worker's session now owns, with what its records need.
    #[derive(Debug, Clone)]
    pub struct ClaimedExpansion {
        pub notification_id: Uuid,
        pub group_id: Uuid,
        pub tenant_id: Uuid,
        pub priority: Priority,
        pub accepted_at: DateTime<Utc>,
        pub trace_parent: Option<String>,
        /// Members planned by an earlier owner whose records may not have been produced.
        pub unproduced: Vec<String>,
        pub planned_all: bool,
    }
}

impl ClaimedExpansion {
    pub fn key(&self) -> ExpansionKey {
        ExpansionKey {
            notification_id: self.notification_id,
            group_id: self.group_id,
        }
    }
}

/// One page planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// `recipients` are new recipients of the notification, counted in its deliveries expected:
    /// produce their records, then [`mark_produced`]. `planned_all`: this was the last page.
    Page {
        recipients: Vec<String>,
        planned_all: bool,
    },
    /// The session no longer owns the expansion (it was taken over, or is done).
    Lost,
}

const CLAIM_SQL: &str = r#"
WITH live_sessions AS (
    SELECT id FROM worker_sessions WHERE heartbeat_at >= now() - $2 * interval '1 millisecond'
), busy_tenants AS (
    SELECT DISTINCT tenant_id FROM group_expansions
    WHERE owner_session IN (SELECT id FROM live_sessions)
), candidates AS (
    -- Per tenant, the expansion that waited longest: never run before, then the one whose turn
    -- ended first.
    SELECT DISTINCT ON (e.tenant_id) e.notification_id, e.group_id, e.turn_ended_at
    FROM group_expansions e
    JOIN notification_states s ON s.id = e.notification_id
    WHERE s.status <> 'scheduled' AND e.tenant_id NOT IN (SELECT tenant_id FROM busy_tenants)
    ORDER BY e.tenant_id, e.turn_ended_at NULLS FIRST, e.notification_id, e.group_id
), picked AS (
    SELECT * FROM candidates ORDER BY turn_ended_at NULLS FIRST, notification_id LIMIT $3
), claimed AS (
    UPDATE group_expansions e SET owner_session = $1
    FROM picked WHERE e.notification_id = picked.notification_id AND e.group_id = picked.group_id
    RETURNING e.notification_id, e.group_id, e.tenant_id, e.unproduced, e.planned_all
)
SELECT c.notification_id, c.group_id, c.tenant_id, c.unproduced, c.planned_all,
       n.priority::text AS priority, n.created_at AS accepted_at, n.trace_parent
FROM claimed c JOIN notifications n ON n.id = c.notification_id
ORDER BY c.notification_id
"#;

/// Takes up to `limit` expansions for `session`: expansions of tenants with none owned by a live
/// session (one per tenant at a time, across every worker), of notifications that are due (not
/// `scheduled`), oldest notification first. An expansion whose owner's session is dead (no
/// heartbeat within `lease`) is free again.
pub async fn claim(
    database: &Database,
    session: Uuid,
    lease: Duration,
    limit: usize,
) -> Result<Vec<ClaimedExpansion>, StoreError> {
    database
        .run("group_expansions.claim", async {
            let transaction = database.connection().begin().await?;
            let body = claim_in(&transaction, session, lease, limit).await;
            finish_transaction(transaction, body).await
        })
        .await
}

async fn claim_in(
    transaction: &DatabaseTransaction,
    session: Uuid,
    lease: Duration,
    limit: usize,
) -> Result<(Vec<ClaimedExpansion>, Finish), DbErr> {
    transaction
        .execute(statement(
            "SELECT pg_advisory_xact_lock($1)",
            [Value::from(CLAIM_LOCK)],
        ))
        .await?;
    let claimed = ClaimedExpansion::find_by_statement(statement(
        CLAIM_SQL,
        [
            Value::from(session),
            Value::from(lease.as_millis() as i64),
            Value::from(limit as i64),
        ],
    ))
    .all(transaction)
    .await?;
    Ok((claimed, Finish::Commit))
}

/// Runs `body`'s statements in a new transaction, committed or rolled back as it says. Each
/// function here does this through an ordinary `async fn` body rather than
/// [`Database::transaction`]'s closure, whose future is not `Send`: the worker runs them in
/// spawned tasks.
async fn finish_transaction<T>(
    transaction: DatabaseTransaction,
    body: Result<(T, Finish), DbErr>,
) -> Result<T, DbErr> {
    let (value, finish) = body?;
    match finish {
        Finish::Commit => transaction.commit().await?,
        Finish::RollBack => transaction.rollback().await?,
    }
    Ok(value)
}

/// The expansion's row, locked, if `session` owns it.
async fn lock_owned(
    transaction: &DatabaseTransaction,
    session: Uuid,
    key: ExpansionKey,
) -> Result<Option<OwnedRow>, DbErr> {
    OwnedRow::find_by_statement(statement(
        "SELECT tenant_id, as_of, planned_through, unproduced, planned_all FROM group_expansions \
         WHERE notification_id = $1 AND group_id = $2 AND owner_session = $3 FOR UPDATE",
        [
            Value::from(key.notification_id),
            Value::from(key.group_id),
            Value::from(session),
        ],
    ))
    .one(transaction)
    .await
}

#[derive(FromQueryResult)]
struct OwnedRow {
    tenant_id: Uuid,
    as_of: DateTime<Utc>,
    planned_through: Option<String>,
    unproduced: Vec<String>,
    planned_all: bool,
}

/// Plans the next page of at most `page_size` members, in one transaction: the members as of the
/// notification's acceptance after the last one planned, those not yet recipients of the
/// notification recorded in `notification_recipients` and counted (× channels) in its deliveries
/// expected. A cancelled notification gets no more pages. An expansion with `unproduced`
/// recipients is answered with those, unplanned: they must be produced first.
pub async fn plan_page(
    database: &Database,
    session: Uuid,
    key: ExpansionKey,
    page_size: usize,
) -> Result<Planned, StoreError> {
    database
        .run("group_expansions.plan_page", async {
            let transaction = database.connection().begin().await?;
            let body = plan_page_in(&transaction, session, key, page_size).await;
            finish_transaction(transaction, body).await
        })
        .await
}

async fn plan_page_in(
    transaction: &DatabaseTransaction,
    session: Uuid,
    key: ExpansionKey,
    page_size: usize,
) -> Result<(Planned, Finish), DbErr> {
    row! {
        struct NotificationState {
            status: NotificationStatus,
            channels: i32,
        }
    }
    #[derive(FromQueryResult)]
    struct Page {
        members: i64,
        last_member: Option<String>,
        recipients: Vec<String>,
    }
    let Some(owned) = lock_owned(transaction, session, key).await? else {
        return Ok((Planned::Lost, Finish::RollBack));
    };
    if !owned.unproduced.is_empty() || owned.planned_all {
        let planned = Planned::Page {
            recipients: owned.unproduced,
            planned_all: owned.planned_all,
        };
        return Ok((planned, Finish::RollBack));
    }
    let state = NotificationState::find_by_statement(statement(
        "SELECT s.status::text AS status, cardinality(n.channels) AS channels \
         FROM notification_states s JOIN notifications n ON n.id = s.id \
         WHERE s.id = $1 FOR NO KEY UPDATE OF s",
        [Value::from(key.notification_id)],
    ))
    .one(transaction)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("the expansion's notification".into()))?;
    if state.status == NotificationStatus::Cancelled {
        // Nothing more is sent for it: the members not planned yet never become recipients.
        store_page(
            transaction,
            key,
            owned.planned_through.as_deref(),
            &[],
            true,
        )
        .await?;
        let planned = Planned::Page {
            recipients: Vec::new(),
            planned_all: true,
        };
        return Ok((planned, Finish::Commit));
    }
    let page = Page::find_by_statement(statement(
        r#"
WITH page AS MATERIALIZED (
    SELECT DISTINCT m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id
    WHERE m.group_id = $1 AND m.user_id > $2
      AND m.added_at <= $3 AND (m.removed_at IS NULL OR m.removed_at > $3)
      AND (g.deleted_at IS NULL OR g.deleted_at > $3)
    ORDER BY m.user_id LIMIT $4
), inserted AS (
    INSERT INTO notification_recipients (tenant_id, user_id, notification_id)
    SELECT $5, user_id, $6 FROM page
    ON CONFLICT DO NOTHING
    RETURNING user_id
)
SELECT (SELECT count(*) FROM page)::bigint AS members,
       (SELECT max(user_id) FROM page) AS last_member,
       (SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM inserted) AS recipients
"#,
        [
            Value::from(key.group_id),
            Value::from(owned.planned_through.clone().unwrap_or_default()),
            Value::from(owned.as_of),
            Value::from(page_size as i64),
            Value::from(owned.tenant_id),
            Value::from(key.notification_id),
        ],
    ))
    .one(transaction)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("the page's summary".into()))?;
    let added_deliveries = i64::try_from(page.recipients.len())
        .unwrap_or(i64::MAX)
        .saturating_mul(i64::from(state.channels));
    transaction
        .execute(statement(
            "UPDATE notification_states \
             SET deliveries_expected = deliveries_expected + $2, updated_at = now() \
             WHERE id = $1",
            [
                Value::from(key.notification_id),
                Value::from(i32::try_from(added_deliveries).unwrap_or(i32::MAX)),
            ],
        ))
        .await?;
    let planned_all = (page.members as usize) < page_size;
    let planned_through = page.last_member.or(owned.planned_through);
    store_page(
        transaction,
        key,
        planned_through.as_deref(),
        &page.recipients,
        planned_all,
    )
    .await?;
    let planned = Planned::Page {
        recipients: page.recipients,
        planned_all,
    };
    Ok((planned, Finish::Commit))
}

async fn store_page(
    transaction: &DatabaseTransaction,
    key: ExpansionKey,
    planned_through: Option<&str>,
    unproduced: &[String],
    planned_all: bool,
) -> Result<(), DbErr> {
    transaction
        .execute(statement(
            "UPDATE group_expansions SET planned_through = $3, unproduced = $4, planned_all = $5 \
             WHERE notification_id = $1 AND group_id = $2",
            [
                Value::from(key.notification_id),
                Value::from(key.group_id),
                Value::from(planned_through),
                Value::from(unproduced.to_vec()),
                Value::from(planned_all),
            ],
        ))
        .await?;
    Ok(())
}

/// Every record of the planned page is acknowledged: forget them. `false` if `session` no longer
/// owns the expansion (whoever does will produce them again, harmlessly).
pub async fn mark_produced(
    database: &Database,
    session: Uuid,
    key: ExpansionKey,
) -> Result<bool, StoreError> {
    let result = database
        .run(
            "group_expansions.mark_produced",
            database.connection().execute(statement(
                "UPDATE group_expansions SET unproduced = '{}' \
                 WHERE notification_id = $1 AND group_id = $2 AND owner_session = $3",
                [
                    Value::from(key.notification_id),
                    Value::from(key.group_id),
                    Value::from(session),
                ],
            )),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends an expansion whose members are all planned and produced: its row goes, and its
/// notification has one expansion less pending, which may make its status final (every delivery
/// may be final already). `false` if `session` no longer owns it or it is not finished.
pub async fn finish(
    database: &Database,
    session: Uuid,
    key: ExpansionKey,
) -> Result<bool, StoreError> {
    database
        .run("group_expansions.finish", async {
            let transaction = database.connection().begin().await?;
            let body = finish_in(&transaction, session, key).await;
            finish_transaction(transaction, body).await
        })
        .await
}

async fn finish_in(
    transaction: &DatabaseTransaction,
    session: Uuid,
    key: ExpansionKey,
) -> Result<(bool, Finish), DbErr> {
    let deleted = transaction
        .execute(statement(
            "DELETE FROM group_expansions \
             WHERE notification_id = $1 AND group_id = $2 AND owner_session = $3 \
               AND planned_all AND cardinality(unproduced) = 0",
            [
                Value::from(key.notification_id),
                Value::from(key.group_id),
                Value::from(session),
            ],
        ))
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok((false, Finish::RollBack));
    }
    let mut progress = ProgressDeltas::default();
    progress.expansion_finished(key.notification_id);
    apply_progress(transaction, &progress).await?;
    Ok((true, Finish::Commit))
}

/// Ends `session`'s turn on an expansion that is not done: it goes back to the claims, behind
/// those that waited longer. `false` if `session` no longer owned it.
pub async fn end_turn(
    database: &Database,
    session: Uuid,
    key: ExpansionKey,
) -> Result<bool, StoreError> {
    let result = database
        .run(
            "group_expansions.end_turn",
            database.connection().execute(statement(
                "UPDATE group_expansions SET owner_session = NULL, turn_ended_at = clock_timestamp() \
                 WHERE notification_id = $1 AND group_id = $2 AND owner_session = $3",
                [
                    Value::from(key.notification_id),
                    Value::from(key.group_id),
                    Value::from(session),
                ],
            )),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives back every expansion `session` owns (a worker stopping): another worker takes them at
/// once instead of after the session's lease.
pub async fn release(database: &Database, session: Uuid) -> Result<u64, StoreError> {
    let result = database
        .run(
            "group_expansions.release",
            database.connection().execute(statement(
                "UPDATE group_expansions SET owner_session = NULL WHERE owner_session = $1",
                [Value::from(session)],
            )),
        )
        .await?;
    Ok(result.rows_affected())
}

/// Expansions waiting or in progress, and the age of the oldest, for the gauges.
#[derive(Debug, Clone, Copy, Default, FromQueryResult)]
pub struct Backlog {
    pub expansions: i64,
    pub oldest_age_seconds: f64,
}

pub async fn backlog(database: &Database) -> Result<Backlog, StoreError> {
    let row = database
        .run(
            "group_expansions.backlog",
            Backlog::find_by_statement(statement(
                "SELECT count(*)::bigint AS expansions, \
                 coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds \
                 FROM group_expansions",
                [],
            ))
            .one(database.connection()),
        )
        .await?;
    Ok(row.unwrap_or_default())
}
