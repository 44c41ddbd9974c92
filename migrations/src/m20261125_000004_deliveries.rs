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
-- One row per (notification, recipient, channel). `id` is UUIDv5 of that triple: every worker
-- derives the same id, and it is the reference given to the provider.
CREATE TABLE deliveries (
    id                   uuid PRIMARY KEY,
    notification_id      uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    tenant_id            uuid NOT NULL,
    user_id              text NOT NULL,
    channel              text NOT NULL,
    status               text NOT NULL,
    attempts             integer NOT NULL DEFAULT 0,
    provider             text,
    provider_message_id  text,
    last_error           text,
    lease_until          timestamptz,
    next_attempt_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_notification_id ON deliveries (notification_id);
-- The retry sweeper's two questions: which retries are due, which leases expired.
CREATE INDEX deliveries_retry_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_lease_expiry ON deliveries (lease_until) WHERE status = 'sending';

CREATE TABLE delivery_attempts (
    delivery_id          uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt              integer NOT NULL,
    outcome              text NOT NULL,
    http_status          integer,
    error                text,
    provider_message_id  text,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE delivery_attempts; DROP TABLE deliveries;")
            .await?;
        Ok(())
    }
}
