//! How far behind the providers' queue is (`delivery_queue`: deliveries that did not fit a lane, and
//! retries): per provider, the deliveries due now and how long the oldest of them has been due. A
//! slow provider grows this backlog while Kafka's lag stays near zero, so the workers scale on it
//! beside lag (docs/DEPLOY.md, "Scaling the workers").

use sea_orm::{FromQueryResult, Value};

use crate::database::{Database, StoreError};
use crate::statement;

/// Due deliveries counted per provider at most: the count stays an index range scan of bounded
/// length however long the queue grows (the gauge then reads this cap).
pub const DUE_COUNT_CAP: i64 = 100_000;

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct ProviderQueueBacklog {
    pub provider: String,
    /// Deliveries due now (at most [`DUE_COUNT_CAP`]).
    pub due: i64,
    /// Seconds since the oldest due delivery became due; 0 when none is due.
    pub oldest_due_age_seconds: f64,
}

/// The backlog of each of `providers`, one row each, in their order. Both parts read the
/// `(provider, due_at)` index from its start: bounded work however long the queue is.
pub async fn queue_backlog(
    database: &Database,
    providers: &[&str],
) -> Result<Vec<ProviderQueueBacklog>, StoreError> {
    let names: Vec<String> = providers.iter().map(|name| (*name).to_owned()).collect();
    let backlog = statement(
        r#"
SELECT listed.provider,
       (SELECT count(*) FROM (
            SELECT 1 FROM delivery_queue queued
            WHERE queued.provider = listed.provider AND queued.due_at <= now()
            LIMIT $2) AS due_rows)::bigint AS due,
       coalesce((SELECT extract(epoch FROM now() - min(queued.due_at))
                 FROM delivery_queue queued
                 WHERE queued.provider = listed.provider AND queued.due_at <= now()), 0)::float8
           AS oldest_due_age_seconds
FROM unnest($1::text[]) WITH ORDINALITY AS listed(provider, position)
ORDER BY listed.position
"#,
        [Value::from(names), Value::from(DUE_COUNT_CAP)],
    );
    database
        .run(
            "delivery_queue.backlog",
            ProviderQueueBacklog::find_by_statement(backlog).all(database.connection()),
        )
        .await
}
