use sea_orm_migration::prelude::*;

/// Dead letters a tenant can list and replay (docs/DESIGN.md, "Dead letters"), and the attempt
/// budget a replay starts afresh.
///
/// * `dead_letters`: one row each time a delivery becomes `failed`, written by the recorder in the
///   transaction that fails it. The hot `deliveries` table keeps no index but its key; this small
///   table carries the tenant's listing index `(tenant_id, id)` (`id` is a UUIDv7 taken when the
///   delivery failed, so newest first is `id DESC`), the replay's look-up by delivery, and the
///   retention's look-up by notification (a letter goes when its notification's day is dropped).
/// * `deliveries.attempt_budget_start`: the attempts made before the current budget. The retry
///   policy counts `attempts - attempt_budget_start`, so a replayed delivery gets
///   `worker.max_attempts` more attempts while its attempt numbers (the keys of
///   `delivery_attempts`) keep counting up. A constant default adds the column without rewriting
///   the table.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
-- A version 7 UUID (RFC 9562) on the database's clock: PostgreSQL 15 has no uuidv7(). The random
-- v4 gets the millisecond timestamp in its first 48 bits and its version bits turned from 4 to 7.
CREATE OR REPLACE FUNCTION herald_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
               PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
               FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE dead_letters (
    id               uuid PRIMARY KEY DEFAULT herald_uuid_v7(),
    tenant_id        uuid NOT NULL,
    notification_id  uuid NOT NULL,
    delivery_id      uuid NOT NULL,
    user_id          text NOT NULL,
    channel          channel NOT NULL,
    provider         text NOT NULL,
    attempts         integer NOT NULL,
    last_error       text,
    failed_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz
);
-- A tenant's dead letters, newest first (keyset on id).
CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, id);
-- The letters of one delivery (a replay takes the newest).
CREATE INDEX dead_letters_delivery ON dead_letters (delivery_id, id);
-- Retention: the letters of notifications whose day was dropped.
CREATE INDEX dead_letters_notification ON dead_letters (notification_id);

ALTER TABLE deliveries ADD COLUMN attempt_budget_start integer NOT NULL DEFAULT 0;
"#;

const DOWN: &str = r#"
ALTER TABLE deliveries DROP COLUMN attempt_budget_start;
DROP TABLE dead_letters;
DROP FUNCTION herald_uuid_v7();
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
