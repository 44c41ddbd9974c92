use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
-- `id` is a UUIDv7 assigned by the API: time-ordered, so the primary key is appended to, and
-- keyset pagination by id is pagination by acceptance time.
CREATE TABLE notifications (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_ids         text[] NOT NULL,
    channels         text[] NOT NULL,
    subject          text,
    body             text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority         text NOT NULL,
    status           text NOT NULL,
    scheduled_for    timestamptz,
    idempotency_key  text,
    request_hash     bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- Listing a tenant's notifications newest first, optionally by status (keyset on id).
CREATE INDEX notifications_tenant_id ON notifications (tenant_id, id DESC);
-- Listing by recipient.
CREATE INDEX notifications_user_ids ON notifications USING gin (user_ids);
CREATE UNIQUE INDEX notifications_idempotency
    ON notifications (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Scheduled notifications that are due (seed 004): small partial index.
CREATE INDEX notifications_scheduled_due
    ON notifications (scheduled_for) WHERE status = 'scheduled';

-- Transactional outbox: one row per committed ingest batch, deleted once the broker acknowledged
-- every record of the batch. Written in the same statement as the notifications.
CREATE TABLE outbox_batches (
    id                uuid PRIMARY KEY,
    notification_ids  uuid[] NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz
);
CREATE INDEX outbox_batches_created_at ON outbox_batches (created_at);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE outbox_batches; DROP TABLE notifications;")
            .await?;
        Ok(())
    }
}
