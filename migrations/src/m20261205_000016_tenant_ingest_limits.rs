use sea_orm_migration::prelude::*;

/// Per-tenant ingest rate limits an operator sets (`herald-api set-ingest-limit`, docs/DESIGN.md,
/// "Tenant ingest limits"): a row overrides `ingest.tenant_notifications_per_second` for its tenant
/// (0: no limit). Every API replica reloads them every two seconds.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE tenant_ingest_limits (
    tenant_id                 uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    notifications_per_second  integer NOT NULL CHECK (notifications_per_second >= 0),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = "DROP TABLE tenant_ingest_limits;";

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
