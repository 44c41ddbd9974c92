use sea_orm_migration::prelude::*;

use crate::delivery_transitions::{check_delivery_transition_function, moves_000012, moves_000025};

/// Recipients' preferences (docs/DESIGN.md, "Preferences"): opted-out channels and categories and
/// quiet hours, on the user's row (read with the recipient, cached with it, invalidated with it);
/// a notification's optional `category`; whether a tenant's `high` notifications go through quiet
/// hours; and the attempt outcome of a delivery skipped when it came due (its recipient had opted
/// out since it was deferred).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE users ADD COLUMN preferences jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(preferences) = 'object');
ALTER TABLE notifications ADD COLUMN category text;
ALTER TABLE tenants ADD COLUMN high_priority_overrides_quiet_hours boolean NOT NULL DEFAULT true;
ALTER TYPE attempt_outcome ADD VALUE IF NOT EXISTS 'opted_out';
-- Deliveries held until their recipient's quiet hours end, apart from `delivery_queue`: the
-- queue's claim walks its tenants, and a tenant with only rows due hours later would cost a turn
-- of every round. The worker's sweeper moves them into the queue when due.
CREATE TABLE deferred_deliveries (
    delivery_id      uuid PRIMARY KEY,
    notification_id  uuid NOT NULL,
    provider         text NOT NULL,
    tenant_id        uuid NOT NULL,
    priority         priority NOT NULL,
    due_at           timestamptz NOT NULL
);
CREATE INDEX deferred_deliveries_due ON deferred_deliveries (due_at);
"#;

/// A value of an enum type cannot be dropped: `opted_out` stays (unused) after a rollback.
const DOWN: &str = r#"
DROP TABLE deferred_deliveries;
ALTER TABLE tenants DROP COLUMN high_priority_overrides_quiet_hours;
ALTER TABLE notifications DROP COLUMN category;
ALTER TABLE users DROP COLUMN preferences;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection.execute_unprepared(UP).await?;
        connection
            .execute_unprepared(&check_delivery_transition_function(&moves_000025()))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection
            .execute_unprepared(&check_delivery_transition_function(&moves_000012()))
            .await?;
        connection.execute_unprepared(DOWN).await?;
        Ok(())
    }
}
