use sea_orm_migration::prelude::*;

/// Fairness between tenants in `delivery_queue` (docs/DESIGN.md, "Fairness between tenants"): each
/// entry names its delivery's tenant, and the pump's claim takes turns by tenant through the index
/// `(provider, tenant_id, priority, due_at)`: one probe finds the next tenant with entries, another
/// a tenant's due entries in priority order. It replaces `(provider, priority, due_at)`, whose
/// order put one tenant's backlog ahead of everybody else's.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE delivery_queue ADD COLUMN tenant_id uuid;
UPDATE delivery_queue q SET tenant_id = d.tenant_id
FROM deliveries d WHERE d.notification_id = q.notification_id AND d.id = q.delivery_id;
-- An entry without its delivery is one the claim would drop unused.
DELETE FROM delivery_queue WHERE tenant_id IS NULL;
ALTER TABLE delivery_queue ALTER COLUMN tenant_id SET NOT NULL;
CREATE INDEX delivery_queue_provider_tenant_priority_due
    ON delivery_queue (provider, tenant_id, priority, due_at);
DROP INDEX delivery_queue_provider_priority_due;
"#;

const DOWN: &str = r#"
CREATE INDEX delivery_queue_provider_priority_due ON delivery_queue (provider, priority, due_at);
DROP INDEX delivery_queue_provider_tenant_priority_due;
ALTER TABLE delivery_queue DROP COLUMN tenant_id;
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
