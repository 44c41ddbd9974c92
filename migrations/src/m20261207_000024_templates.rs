use sea_orm_migration::prelude::*;

/// Templates (docs/DESIGN.md, "Templates"): each `PUT /v1/templates/{id}` writes a new, immutable
/// version; a notification stores the version it was accepted with, so a later edit never changes
/// what it sends. Deleting a template marks its versions deleted: new notifications may no longer
/// name it, accepted ones still render.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE templates (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    template_id  text NOT NULL CHECK (length(template_id) BETWEEN 1 AND 128),
    version      integer NOT NULL CHECK (version >= 1),
    definition   jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    -- The channels of its default locale: what acceptance checks a notification's channels against.
    channels     channel[] NOT NULL CHECK (cardinality(channels) >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id, version)
);
-- One row per template, locked by every write of its versions: version numbers are taken in
-- order, without gaps or a race between two replicas.
CREATE TABLE template_heads (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    template_id     text NOT NULL,
    latest_version  integer NOT NULL CHECK (latest_version >= 1),
    deleted         boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id)
);
-- Both or neither (written together by the acceptance statement). No CHECK: validating one would
-- scan every partition of the table under its lock.
ALTER TABLE notifications ADD COLUMN template_id text;
ALTER TABLE notifications ADD COLUMN template_version integer;
"#;

const DOWN: &str = r#"
ALTER TABLE notifications DROP COLUMN template_version;
ALTER TABLE notifications DROP COLUMN template_id;
DROP TABLE template_heads;
DROP TABLE templates;
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
