use sea_orm_migration::prelude::*;

use crate::delivery_transitions::{check_delivery_transition_function, moves_000008, MOVES_000005};

/// The statuses of cancellation, provider reports and dead-letter replay (herald-domain's
/// `status.rs`): `cancelled` notifications and deliveries, deliveries `delivered` or `bounced` as
/// their provider reported, a counter of cancelled deliveries, and triggers that allow exactly the
/// domain's new moves (`sent → delivered | bounced | failed`, `queued | retrying → cancelled`,
/// `failed → queued` for a replay, and a failed or partially delivered notification back to
/// `processing` when one of its failed deliveries is replayed).
///
/// `ALTER TYPE … ADD VALUE` cannot be undone: `down` restores the triggers and the counter, and
/// the values stay, unused.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TYPE notification_status ADD VALUE IF NOT EXISTS 'cancelled';
ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'cancelled';
ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'delivered';
ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'bounced';

ALTER TABLE notification_states ADD COLUMN deliveries_cancelled integer NOT NULL DEFAULT 0;
ALTER TABLE notification_states DROP CONSTRAINT notification_states_check;
ALTER TABLE notification_states DROP CONSTRAINT notification_states_check1;
ALTER TABLE notification_states ADD CONSTRAINT notification_states_counters_not_negative
    CHECK (deliveries_sent >= 0 AND deliveries_failed >= 0 AND deliveries_skipped >= 0
           AND deliveries_cancelled >= 0);
ALTER TABLE notification_states ADD CONSTRAINT notification_states_counters_within_expected
    CHECK (deliveries_sent + deliveries_failed + deliveries_skipped + deliveries_cancelled
           <= deliveries_expected);

-- NotificationStatus::may_become: forward only, or a failed / partially delivered notification
-- reopened by a replay.
CREATE OR REPLACE FUNCTION herald_check_notification_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF herald_notification_status_rank(NEW.status) > herald_notification_status_rank(OLD.status)
       OR (OLD.status::text IN ('failed', 'partially_delivered') AND NEW.status::text = 'processing') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a notification cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END
$$;

-- Retention: a final notification in the default partition is any but the three unfinished
-- statuses (it listed the final ones, and `cancelled` is new). `down` keeps this version: on the old
-- statuses both say the same.
CREATE OR REPLACE FUNCTION herald_drop_expired_partitions(keep_from date)
RETURNS TABLE (day date, dropped boolean) LANGUAGE plpgsql AS $$
DECLARE
    states_partition text;
    unfinished boolean;
BEGIN
    FOR day IN
        SELECT to_date(right(c.relname, 8), 'YYYYMMDD')
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'notification_states' AND c.relname ~ '_[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < keep_from
        ORDER BY 1
    LOOP
        states_partition := 'notification_states_' || to_char(day, 'YYYYMMDD');
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (%L, %L, %L))',
                       states_partition, 'scheduled', 'accepted', 'processing')
            INTO unfinished;
        IF unfinished THEN
            dropped := false;
        ELSE
            EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I, %I',
                           'delivery_attempts_' || to_char(day, 'YYYYMMDD'),
                           'deliveries_' || to_char(day, 'YYYYMMDD'),
                           states_partition,
                           'notifications_' || to_char(day, 'YYYYMMDD'));
            dropped := true;
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM delivery_attempts_default WHERE notification_id < herald_day_bound(keep_from);
    DELETE FROM deliveries_default WHERE notification_id < herald_day_bound(keep_from);
    DELETE FROM notification_states_default s WHERE s.id < herald_day_bound(keep_from)
        AND s.status NOT IN ('scheduled', 'accepted', 'processing');
    DELETE FROM notifications_default n WHERE n.id < herald_day_bound(keep_from)
        AND NOT EXISTS (SELECT 1 FROM notification_states_default s WHERE s.id = n.id);
END
$$;
"#;

const DOWN: &str = r#"
CREATE OR REPLACE FUNCTION herald_check_notification_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF herald_notification_status_rank(NEW.status) > herald_notification_status_rank(OLD.status) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a notification cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END
$$;
ALTER TABLE notification_states DROP CONSTRAINT notification_states_counters_within_expected;
ALTER TABLE notification_states DROP CONSTRAINT notification_states_counters_not_negative;
ALTER TABLE notification_states DROP COLUMN deliveries_cancelled;
ALTER TABLE notification_states ADD CONSTRAINT notification_states_check
    CHECK (deliveries_sent >= 0 AND deliveries_failed >= 0 AND deliveries_skipped >= 0);
ALTER TABLE notification_states ADD CONSTRAINT notification_states_check1
    CHECK (deliveries_sent + deliveries_failed + deliveries_skipped <= deliveries_expected);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection.execute_unprepared(UP).await?;
        // DeliveryStatus::may_become.
        connection
            .execute_unprepared(&check_delivery_transition_function(&moves_000008()))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection
            .execute_unprepared(&check_delivery_transition_function(MOVES_000005))
            .await?;
        connection.execute_unprepared(DOWN).await?;
        Ok(())
    }
}
