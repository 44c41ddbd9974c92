use sea_orm_migration::prelude::*;

/// Priority lanes (docs/DESIGN.md, "Priority lanes"): every `delivery_queue` entry carries its
/// notification's priority, and the pump claims "due entries of this provider, highest priority
/// first" through `(provider, priority, due_at)`. The `priority` enum's order is
/// `high < normal < low`, so `ORDER BY priority` puts `high` first.
///
/// Entries already queued take their notification's priority. The default, `normal`, only serves
/// a writer that does not name the priority (every statement of Herald names it).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE delivery_queue ADD COLUMN priority priority NOT NULL DEFAULT 'normal';
                 UPDATE delivery_queue q SET priority = n.priority
                 FROM notifications n
                 WHERE n.id = q.notification_id AND n.priority <> 'normal';
                 CREATE INDEX delivery_queue_provider_priority_due
                     ON delivery_queue (provider, priority, due_at);
                 DROP INDEX delivery_queue_provider_due;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX delivery_queue_provider_due ON delivery_queue (provider, due_at);
                 DROP INDEX delivery_queue_provider_priority_due;
                 ALTER TABLE delivery_queue DROP COLUMN priority;",
            )
            .await?;
        Ok(())
    }
}
