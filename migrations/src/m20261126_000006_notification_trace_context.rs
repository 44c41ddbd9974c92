use sea_orm_migration::prelude::*;

/// The W3C trace context of the request that accepted a notification, so that the relay's and the
/// worker's later work on it (republishing, queued and retried deliveries) stays in its trace.
/// Nullable and without a default: adding it rewrites nothing.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE notifications ADD COLUMN trace_parent text")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE notifications DROP COLUMN trace_parent")
            .await?;
        Ok(())
    }
}
