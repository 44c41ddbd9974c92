use sea_orm_migration::prelude::*;

/// Per-tenant daily ingest quotas an operator sets (`herald-api set-ingest-limit
/// --notifications-per-day`, docs/DESIGN.md, "Tenant ingest limits"): `notifications_per_day`
/// overrides `ingest.tenant_notifications_per_day` for its tenant (0: no quota). Either override
/// may now be given alone, so each column is nullable: `NULL` is "the configured default".
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE tenant_ingest_limits ALTER COLUMN notifications_per_second DROP NOT NULL;
ALTER TABLE tenant_ingest_limits
    ADD COLUMN notifications_per_day bigint CHECK (notifications_per_day >= 0);
"#;

// A row that overrides only the daily quota has nothing left to say without its column.
const DOWN: &str = r#"
DELETE FROM tenant_ingest_limits WHERE notifications_per_second IS NULL;
ALTER TABLE tenant_ingest_limits DROP COLUMN notifications_per_day;
ALTER TABLE tenant_ingest_limits ALTER COLUMN notifications_per_second SET NOT NULL;
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
