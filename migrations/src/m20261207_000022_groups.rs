use sea_orm_migration::prelude::*;

/// Groups of recipients, expanded in the worker (docs/DESIGN.md, "Groups: fan-out in the worker").
///
/// * `groups`: a tenant's group, named by the tenant's id for it (`external_id`) and keyed by an id
///   of Herald's own, so that a group deleted and created again under the same name is a new group:
///   notifications accepted before the delete still expand the old one.
/// * `group_members` keeps history: removing a member closes its row (`removed_at`), adding it
///   back writes a new one. A notification's group means its members as of the notification's
///   acceptance (`group_expansions.as_of`). Every member write locks its group's row first and
///   stamps `clock_timestamp()` after the lock, so one member's rows never overlap in time.
/// * `group_expansions`: the durable state of one group's fan-out for one notification, written
///   by the acceptance statement itself and deleted when the fan-out is done.
/// * `notifications.group_ids` (as the tenant named them) and `notification_states.expansions_pending`
///   (the groups not yet expanded; the status cannot become final while it is above 0).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE groups (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    external_id   text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 128),
    name          text CHECK (length(name) <= 256),
    member_count  integer NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
-- One live group per name; deleted ones keep their rows for the notifications that name them.
CREATE UNIQUE INDEX groups_live_by_name ON groups (tenant_id, external_id) WHERE deleted_at IS NULL;

CREATE TABLE group_members (
    group_id    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    added_at    timestamptz NOT NULL,
    removed_at  timestamptz,
    CHECK (removed_at IS NULL OR removed_at >= added_at)
);
-- At most one open row per member; the keyset walk of an expansion and of the members' list.
CREATE UNIQUE INDEX group_members_current ON group_members (group_id, user_id) WHERE removed_at IS NULL;
CREATE INDEX group_members_history ON group_members (group_id, user_id, added_at);
-- Maintenance drops closed rows after the retention.
CREATE INDEX group_members_closed ON group_members (removed_at) WHERE removed_at IS NOT NULL;

ALTER TABLE notifications ADD COLUMN group_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE notification_states ADD COLUMN expansions_pending integer NOT NULL DEFAULT 0
    CHECK (expansions_pending >= 0);
-- A notification to groups only knows none of its deliveries at acceptance (and groups without
-- members give it none).
ALTER TABLE notification_states DROP CONSTRAINT notification_states_deliveries_expected_check;
ALTER TABLE notification_states ADD CONSTRAINT notification_states_deliveries_expected_check
    CHECK (deliveries_expected >= 0);

CREATE TABLE group_expansions (
    notification_id   uuid NOT NULL,
    group_id          uuid NOT NULL REFERENCES groups (id),
    tenant_id         uuid NOT NULL,
    -- The database's clock when the notification was committed: membership as of then.
    as_of             timestamptz NOT NULL,
    -- The last member planned (NULL: none yet); planning walks members in user_id order.
    planned_through   text,
    -- Members planned (in notification_recipients, counted in deliveries_expected) whose records
    -- are not yet acknowledged by the broker: produced again by whoever owns the expansion next.
    unproduced        text[] NOT NULL DEFAULT '{}',
    -- Every member is planned: once `unproduced` is empty, the expansion is done.
    planned_all       boolean NOT NULL DEFAULT false,
    -- The worker session expanding it; leased through that session's heartbeat.
    owner_session     uuid,
    -- When its last turn ended: an expansion gives its worker back after a few pages, and the
    -- claims take those that waited longest first, so a tenant's huge group takes turns with the
    -- others' instead of holding a worker until it is done.
    turn_ended_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, group_id)
);
CREATE INDEX group_expansions_by_tenant ON group_expansions (tenant_id, notification_id);
"#;

const DOWN: &str = r#"
DROP TABLE group_expansions;
ALTER TABLE notification_states DROP CONSTRAINT notification_states_deliveries_expected_check;
ALTER TABLE notification_states ADD CONSTRAINT notification_states_deliveries_expected_check
    CHECK (deliveries_expected > 0) NOT VALID;
ALTER TABLE notification_states DROP COLUMN expansions_pending;
ALTER TABLE notifications DROP COLUMN group_ids;
DROP TABLE group_members;
DROP TABLE groups;
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
