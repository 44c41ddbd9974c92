//! Storage bounds (docs/DESIGN.md, "Storage bounds and retention"): daily partitions made ahead
//! and dropped whole after the retention (with their dead letters), and expired idempotency keys.
//! Run by one replica at a time, under a session-level advisory lock.

use chrono::NaiveDate;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, TransactionTrait, Value,
};

use crate::database::{Database, StoreError};

/// Any number unique to Herald's maintenance, for `pg_try_advisory_xact_lock`: whoever changes
/// partitions holds it, so two of them never deadlock on the tables' locks.
pub const MAINTENANCE_LOCK: i64 = 0x4845_5241_4c44_0001;

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Another replica held the lock: nothing was done.
    pub skipped: bool,
    pub partitions_created: i32,
    pub days_dropped: Vec<NaiveDate>,
    /// Days past the retention that still hold a notification that is not final.
    pub days_blocked: Vec<NaiveDate>,
}

/// Group member rows deleted per maintenance pass and kind, so that a pass stays short however much
/// history there is (one pass a minute works through 600,000 rows an hour).
const GROUP_HISTORY_ROWS_PER_PASS: i64 = 10_000;

/// Group history older than the retention (docs/DESIGN.md, "Groups: fan-out in the worker"):
/// members removed before `keep_from`, then the members of groups deleted before it, then those
/// groups once empty. Nothing of a group that a notification still has to expand is touched,
/// whatever its age (retention spares unfinished notifications).
async fn forget_old_group_history(
    transaction: &sea_orm::DatabaseTransaction,
    keep_from: NaiveDate,
) -> Result<(), sea_orm::DbErr> {
    let cutoff = keep_from
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let closed_rows = [
        "DELETE FROM group_members WHERE ctid IN ( \
             SELECT m.ctid FROM group_members m WHERE m.removed_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM group_expansions e WHERE e.group_id = m.group_id) \
             LIMIT $2)",
        "DELETE FROM group_members WHERE ctid IN ( \
             SELECT m.ctid FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE g.deleted_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM group_expansions e WHERE e.group_id = g.id) \
             LIMIT $2)",
    ];
    for sql in closed_rows {
        transaction
            .execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                sql,
                [
                    Value::from(cutoff),
                    Value::from(GROUP_HISTORY_ROWS_PER_PASS),
                ],
            ))
            .await?;
    }
    transaction
        .execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "DELETE FROM groups g WHERE g.deleted_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id) \
               AND NOT EXISTS (SELECT 1 FROM group_expansions e WHERE e.group_id = g.id)",
            [Value::from(cutoff)],
        ))
        .await?;
    Ok(())
}

/// Creates the partitions for `[today - 1, today + premake_days]` and drops the days before
/// `today - retention_days`, in one transaction that holds the maintenance lock. Waits at most
/// `lock_timeout_ms` for a table lock, so ingest never queues behind maintenance for long.
pub async fn maintain_partitions(
    database: &Database,
    today: NaiveDate,
    premake_days: u32,
    retention_days: u32,
) -> Result<MaintenanceReport, StoreError> {
    #[derive(FromQueryResult)]
    struct Locked {
        locked: bool,
    }
    #[derive(FromQueryResult)]
    struct Created {
        created: i32,
    }
    #[derive(FromQueryResult)]
    struct Day {
        day: NaiveDate,
        dropped: bool,
    }
    let first_day = today - chrono::Days::new(1);
    let last_day = today + chrono::Days::new(u64::from(premake_days));
    let keep_from = today - chrono::Days::new(u64::from(retention_days));
    database
        .run("maintenance.partitions", async {
            let transaction = database.connection().begin().await?;
            let locked = Locked::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [Value::from(MAINTENANCE_LOCK)],
            ))
            .one(&transaction)
            .await?
            .is_some_and(|row| row.locked);
            if !locked {
                return Ok(MaintenanceReport {
                    skipped: true,
                    ..MaintenanceReport::default()
                });
            }
            transaction
                .execute_unprepared("SET LOCAL lock_timeout = '2s'")
                .await?;
            let created = Created::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT herald_ensure_partitions($1, $2) AS created",
                [Value::from(first_day), Value::from(last_day)],
            ))
            .one(&transaction)
            .await?
            .map_or(0, |row| row.created);
            let days = Day::find_by_statement(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT day, dropped FROM herald_drop_expired_partitions($1)",
                [Value::from(keep_from)],
            ))
            .all(&transaction)
            .await?;
            // Dead letters are not partitioned (they are few, and indexed by tenant): the letters
            // of notifications whose day is gone go with it.
            transaction
                .execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "DELETE FROM dead_letters l WHERE l.notification_id < herald_day_bound($1) \
                     AND NOT EXISTS (SELECT 1 FROM notification_states s WHERE s.id = l.notification_id)",
                    [Value::from(keep_from)],
                ))
                .await?;
            // So are cancellations (the workers read only the recent ones).
            transaction
                .execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "DELETE FROM notification_cancellations c \
                     WHERE c.notification_id < herald_day_bound($1) \
                     AND NOT EXISTS (SELECT 1 FROM notification_states s WHERE s.id = c.notification_id)",
                    [Value::from(keep_from)],
                ))
                .await?;
            forget_old_group_history(&transaction, keep_from).await?;
            transaction.commit().await?;
            Ok(MaintenanceReport {
                skipped: false,
                partitions_created: created,
                days_dropped: days
                    .iter()
                    .filter(|day| day.dropped)
                    .map(|day| day.day)
                    .collect(),
                days_blocked: days
                    .iter()
                    .filter(|day| !day.dropped)
                    .map(|day| day.day)
                    .collect(),
            })
        })
        .await
}
