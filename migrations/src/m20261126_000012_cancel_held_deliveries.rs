use sea_orm_migration::prelude::*;

use crate::delivery_transitions::{check_delivery_transition_function, moves_000008, moves_000012};

/// Cancelling the deliveries a worker already holds (docs/DESIGN.md, "Cancellation"): a
/// cancellation is written to `notification_cancellations`, which every worker polls; a worker that
/// holds a delivery of a cancelled notification and has not started its call records it
/// `cancelled` (`sending → cancelled`) with an attempt of outcome `cancelled`, and never calls.
///
/// `cancelled_at` is the clock at the insert, the cancel transaction's last statement, so a row
/// becomes visible at most a commit later than its time says: the workers' polls overlap by a few
/// seconds to see a row that committed late. Rows go with their notification's day (retention).
///
/// `ALTER TYPE … ADD VALUE` cannot be undone: `down` restores the trigger and drops the table, and
/// the value stays, unused.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TYPE attempt_outcome ADD VALUE IF NOT EXISTS 'cancelled';

CREATE TABLE notification_cancellations (
    notification_id uuid PRIMARY KEY,
    cancelled_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX notification_cancellations_cancelled_at
    ON notification_cancellations (cancelled_at, notification_id);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection.execute_unprepared(UP).await?;
        connection
            .execute_unprepared(&check_delivery_transition_function(&moves_000012()))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection
            .execute_unprepared(&check_delivery_transition_function(&moves_000008()))
            .await?;
        connection
            .execute_unprepared("DROP TABLE notification_cancellations;")
            .await?;
        Ok(())
    }
}
