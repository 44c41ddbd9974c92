use sea_orm_migration::prelude::*;

/// A webhook subscription's backlog is bounded (docs/DESIGN.md, "Status events and webhook
/// subscriptions"):
/// * `dropped_events` counts the events it did not take while its backlog was full, and
///   `backlog_full_since` says since when it has been refusing them (cleared once it takes events
///   again); both are shown by `GET /v1/webhooks`.
/// * `webhook_event_sends_pending` serves the claim (each subscription's oldest due sends, read in
///   order from the index instead of a window sorted over every due send) and the count of a
///   subscription's backlog. It replaces `webhook_event_sends_due` (due time alone), with which the
///   planner could probe one subscription by reading another's whole backlog.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE webhook_subscriptions
    ADD COLUMN dropped_events bigint NOT NULL DEFAULT 0,
    ADD COLUMN backlog_full_since timestamptz;
CREATE INDEX webhook_event_sends_pending ON webhook_event_sends (subscription_id, due_at)
    WHERE parked_at IS NULL;
DROP INDEX webhook_event_sends_due;
"#;

const DOWN: &str = r#"
CREATE INDEX webhook_event_sends_due ON webhook_event_sends (due_at) WHERE parked_at IS NULL;
DROP INDEX webhook_event_sends_pending;
ALTER TABLE webhook_subscriptions DROP COLUMN backlog_full_since, DROP COLUMN dropped_events;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
