use sea_orm_migration::prelude::*;

/// One export per tenant at a time, across every API replica (`GET /v1/notifications/export`): the
/// export in progress holds its tenant's lease, renews it with every page and gives it back at its
/// end; a lease its holder stopped renewing (a replica that died mid-export) expires.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE export_leases (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    holder      uuid NOT NULL,
    expires_at  timestamptz NOT NULL
);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE export_leases;")
            .await?;
        Ok(())
    }
}
