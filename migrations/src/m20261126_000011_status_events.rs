use sea_orm_migration::prelude::*;

/// Status events and webhook subscriptions (docs/DESIGN.md, "Status events and webhook
/// subscriptions").
///
/// * `status_events`: an outbox of delivery status changes, filled by triggers on `deliveries`, so
///   that no code path that changes a status (admission, recorder, sweeper, cancellation, replay,
///   provider callbacks, whatever comes next) can forget to announce it. The worker's relay produces
///   the rows to the `notification-events` topic and deletes them once acknowledged: the table
///   only holds what is not yet published.
/// * The triggers are statement-level with transition tables: one `INSERT … SELECT` per statement,
///   however many rows it touched, instead of one trigger call per row on the hottest table.
///   PostgreSQL's rules shape them: transition tables are allowed on a partitioned table's
///   statement-level triggers (they then see the rows of every partition), but not on a trigger
///   with more than one event nor with a column list (`UPDATE OF status`): hence two triggers, and
///   the update trigger keeps only the rows whose status changed. Statements that address a
///   partition directly would bypass them; Herald only writes `deliveries` through the parent.
/// * `webhook_subscriptions`: a tenant's endpoints for these events, with their signing secret
///   (kept as given: it must sign, so it cannot be hashed).
/// * `webhook_event_sends`: each (event, subscription) still to be sent, durable so that retries
///   survive restarts and one slow endpoint never holds back a Kafka partition; parked after the
///   last attempt, for an operator to look at.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE status_events (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The event's id on the topic and in `webhook-id`: stable across redelivery.
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL,
    notification_id   uuid NOT NULL,
    delivery_id       uuid NOT NULL,
    user_id           text NOT NULL,
    channel           channel NOT NULL,
    provider          text NOT NULL,
    previous_status   delivery_status,
    status            delivery_status NOT NULL,
    at                timestamptz NOT NULL DEFAULT now(),
    lease_owner       uuid,
    lease_until       timestamptz
);

CREATE FUNCTION herald_announce_inserted_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_events (tenant_id, notification_id, delivery_id, user_id, channel, provider,
                               previous_status, status)
    SELECT tenant_id, notification_id, id, user_id, channel, provider, NULL, status
    FROM inserted_deliveries;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_announce_inserts
    AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS inserted_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION herald_announce_inserted_deliveries();

CREATE FUNCTION herald_announce_changed_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_events (tenant_id, notification_id, delivery_id, user_id, channel, provider,
                               previous_status, status)
    SELECT after.tenant_id, after.notification_id, after.id, after.user_id, after.channel,
           after.provider, before.status, after.status
    FROM updated_deliveries_after AS after
    JOIN updated_deliveries_before AS before
      ON before.notification_id = after.notification_id AND before.id = after.id
    WHERE before.status IS DISTINCT FROM after.status;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_announce_status_changes
    AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS updated_deliveries_before NEW TABLE AS updated_deliveries_after
    FOR EACH STATEMENT EXECUTE FUNCTION herald_announce_changed_deliveries();

CREATE TABLE webhook_subscriptions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url          text NOT NULL,
    -- `delivery.<status>` names, or `*` for every event.
    event_types  text[] NOT NULL CHECK (cardinality(event_types) > 0),
    secret       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id, created_at);

CREATE TABLE webhook_event_sends (
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    -- The event exactly as produced to the topic: every attempt signs and sends the same bytes.
    payload          text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    due_at           timestamptz NOT NULL DEFAULT now(),
    lease_owner      uuid,
    lease_until      timestamptz,
    last_error       text,
    parked_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX webhook_event_sends_due ON webhook_event_sends (due_at) WHERE parked_at IS NULL;
"#;

const DOWN: &str = r#"
DROP TABLE webhook_event_sends;
DROP TABLE webhook_subscriptions;
DROP TRIGGER deliveries_announce_status_changes ON deliveries;
DROP TRIGGER deliveries_announce_inserts ON deliveries;
DROP FUNCTION herald_announce_changed_deliveries();
DROP FUNCTION herald_announce_inserted_deliveries();
DROP TABLE status_events;
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
