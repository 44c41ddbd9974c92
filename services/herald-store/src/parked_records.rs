//! Kafka records a worker could not process, kept with the reason so that nothing is skipped
//! silently and an operator can replay them (`herald-worker replay-parked`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use serde::Serialize;

use crate::database::{Database, StoreError};
use crate::json_parameter;

/// Larger payloads are cut: a parked record must not be a way to fill the database.
pub const MAX_PARKED_PAYLOAD_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct NewParkedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Hex, for the JSON parameter.
    pub record_key: Option<String>,
    pub payload: Option<String>,
    pub reason: String,
}

impl NewParkedRecord {
    pub fn new(
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        reason: String,
    ) -> NewParkedRecord {
        let cut = |bytes: &[u8]| hex::encode(&bytes[..bytes.len().min(MAX_PARKED_PAYLOAD_BYTES)]);
        NewParkedRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            record_key: key.map(cut),
            payload: payload.map(cut),
            reason,
        }
    }
}

/// Parks the records; a record parked before (a redelivery) keeps its first entry.
pub async fn park(database: &Database, records: &[NewParkedRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
INSERT INTO parked_records (topic, partition, "offset", record_key, payload, reason)
SELECT topic, partition, "offset", decode(record_key, 'hex'), decode(payload, 'hex'), reason
FROM jsonb_to_recordset($1::jsonb) AS row(topic text, partition integer, "offset" bigint,
                                           record_key text, payload text, reason text)
ON CONFLICT (topic, partition, "offset") DO NOTHING
"#,
        [json_parameter(&records)?],
    );
    database
        .run(
            "parked_records.park",
            database.connection().execute(statement),
        )
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromQueryResult, Serialize)]
pub struct ParkedRecord {
    pub id: i64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub record_key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
}

/// Records not replayed yet, oldest first.
pub async fn pending(database: &Database, limit: u64) -> Result<Vec<ParkedRecord>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT id, topic, partition, "offset", record_key, payload, reason, parked_at FROM parked_records
WHERE replayed_at IS NULL ORDER BY id LIMIT $1
"#,
        [Value::from(limit as i64)],
    );
    database
        .run(
            "parked_records.pending",
            ParkedRecord::find_by_statement(statement).all(database.connection()),
        )
        .await
}

pub async fn count_pending(database: &Database) -> Result<u64, StoreError> {
    let statement = Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT count(*)::bigint AS parked FROM parked_records WHERE replayed_at IS NULL",
    );
    let count = database
        .scalar("parked_records.count_pending", statement)
        .await?;
    Ok(count.max(0) as u64)
}

pub async fn mark_replayed(database: &Database, ids: &[i64]) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE parked_records SET replayed_at = now() WHERE id = ANY($1)",
        [Value::from(ids.to_vec())],
    );
    database
        .run(
            "parked_records.mark_replayed",
            database.connection().execute(statement),
        )
        .await?;
    Ok(())
}
