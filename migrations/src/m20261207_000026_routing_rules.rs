use sea_orm_migration::prelude::*;

/// Routing rules (docs/DESIGN.md, "Routing rules"): each tenant's rule set, written whole as an
/// immutable version, its head naming the current one; a notification keeps the version current
/// when it was accepted (read by the group commit's insert), which the workers evaluate.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE routing_rule_sets (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    rules       jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
CREATE TABLE routing_rule_heads (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0)
);
ALTER TABLE notifications ADD COLUMN routing_rules_version integer;
"#;

const DOWN: &str = r#"
ALTER TABLE notifications DROP COLUMN routing_rules_version;
DROP TABLE routing_rule_heads;
DROP TABLE routing_rule_sets;
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
