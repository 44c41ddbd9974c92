//! Worker sessions: one per worker process, alive while its heartbeat (database clock) is younger
//! than the lease. Every claim a worker holds is leased through this one heartbeat.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};
use uuid::Uuid;

use crate::database::{Database, StoreError};

/// Registers a new session for a worker on `host`; returns its id.
pub async fn register(database: &Database, host: &str) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "INSERT INTO worker_sessions (id, host, started_at, heartbeat_at) VALUES ($1, $2, now(), now())",
        [Value::from(id), Value::from(host)],
    );
    database
        .run(
            "sessions.register",
            database.connection().execute(statement),
        )
        .await?;
    Ok(id)
}

/// Renews the heartbeat. `false` means the session is dead: its heartbeat is older than `lease`
/// (or it was deleted), so its claims may already be someone else's. A dead session is never
/// renewed: a takeover and a late heartbeat cannot both succeed (the takeover locks the row).
pub async fn heartbeat(
    database: &Database,
    session: Uuid,
    lease: std::time::Duration,
) -> Result<bool, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
UPDATE worker_sessions SET heartbeat_at = now()
WHERE id = $1 AND heartbeat_at >= now() - $2 * interval '1 millisecond'
"#,
        [Value::from(session), Value::from(lease.as_millis() as i64)],
    );
    let result = database
        .run(
            "sessions.heartbeat",
            database.connection().execute(statement),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends a session that holds nothing any more (graceful shutdown).
pub async fn end(database: &Database, session: Uuid) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
DELETE FROM worker_sessions s WHERE s.id = $1
  AND NOT EXISTS (SELECT 1 FROM send_batches b WHERE b.session_id = s.id)
"#,
        [Value::from(session)],
    );
    database
        .run("sessions.end", database.connection().execute(statement))
        .await?;
    Ok(())
}
