use sea_orm_migration::prelude::*;

/// A recipient's notifications newest first, read with a LIMIT (docs/DESIGN.md, "Reading a
/// recipient's notifications"). The GIN index on `notifications (tenant_id, user_ids)` gave every
/// notification of a recipient, unordered: a page of a recipient with 15,000 notifications fetched
/// and sorted all of them (about 88 ms each under load), so a tenant looping such reads held its
/// read permits the whole time. `notification_recipients` holds one row per (notification,
/// recipient), keyed `(tenant_id, user_id, notification_id)`: a page is an index walk backwards
/// from the cursor that stops after `limit` rows.
///
/// * Written by a statement trigger on `notifications`, from the inserted rows: every path that
///   inserts notifications (the group commit, an API replica of the previous version during a
///   rolling upgrade, a test, an operator's repair) keeps it complete, with no contract for the
///   writer to remember. It replaces the GIN index; the group commit's statement costs about 29 %
///   more for it (docs/DESIGN.md).
/// * Partitioned by day on the notification id like `notifications`; maintenance creates and
///   drops its days with the others (`herald_ensure_partitions`, `herald_drop_expired_partitions`).
/// * The functions name the table only while it exists, so `down` leaves them as they are.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE notification_recipients (
    tenant_id        uuid NOT NULL,
    user_id          text NOT NULL,
    notification_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_id, notification_id)
) PARTITION BY RANGE (notification_id);
CREATE TABLE notification_recipients_default PARTITION OF notification_recipients DEFAULT;

CREATE OR REPLACE FUNCTION herald_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    parent text;
    partition_name text;
    storage text;
    created integer := 0;
BEGIN
    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        FOREACH parent IN ARRAY ARRAY['notifications', 'notification_states', 'deliveries',
                                      'delivery_attempts', 'notification_recipients'] LOOP
            CONTINUE WHEN to_regclass(parent) IS NULL;
            partition_name := parent || '_' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;
            -- Room on every page for updated row versions (HOT updates): a delivery is updated
            -- about once after its insert, so half of each page is kept free for that.
            storage := CASE parent WHEN 'notification_states' THEN ' WITH (fillfactor = 70)'
                                   WHEN 'deliveries' THEN ' WITH (fillfactor = 50)'
                                   ELSE '' END;
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)%s',
                               partition_name, parent, herald_day_bound(day),
                               herald_day_bound(day + 1), storage);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'rows of % are in the default partition of %; day skipped', day, parent;
            END;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

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
        -- Before the check: nothing may lock a state row of this day (a replay) until the drop.
        EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', states_partition);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (%L, %L, %L))',
                       states_partition, 'scheduled', 'accepted', 'processing')
            INTO unfinished;
        IF unfinished THEN
            dropped := false;
        ELSE
            EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I, %I, %I',
                           'delivery_attempts_' || to_char(day, 'YYYYMMDD'),
                           'deliveries_' || to_char(day, 'YYYYMMDD'),
                           states_partition,
                           'notification_recipients_' || to_char(day, 'YYYYMMDD'),
                           'notifications_' || to_char(day, 'YYYYMMDD'));
            dropped := true;
        END IF;
        RETURN NEXT;
    END LOOP;
    LOCK TABLE notification_states_default IN EXCLUSIVE MODE;
    DELETE FROM delivery_attempts_default a WHERE a.notification_id < herald_day_bound(keep_from)
        AND NOT EXISTS (SELECT 1 FROM notification_states s WHERE s.id = a.notification_id
                        AND s.status IN ('scheduled', 'accepted', 'processing'));
    DELETE FROM deliveries_default d WHERE d.notification_id < herald_day_bound(keep_from)
        AND NOT EXISTS (SELECT 1 FROM notification_states s WHERE s.id = d.notification_id
                        AND s.status IN ('scheduled', 'accepted', 'processing'));
    DELETE FROM notification_states_default s WHERE s.id < herald_day_bound(keep_from)
        AND s.status NOT IN ('scheduled', 'accepted', 'processing');
    DELETE FROM notifications_default n WHERE n.id < herald_day_bound(keep_from)
        AND NOT EXISTS (SELECT 1 FROM notification_states_default s WHERE s.id = n.id);
    IF to_regclass('notification_recipients_default') IS NOT NULL THEN
        DELETE FROM notification_recipients_default r
        WHERE r.notification_id < herald_day_bound(keep_from)
          AND NOT EXISTS (SELECT 1 FROM notifications_default n WHERE n.id = r.notification_id);
    END IF;
END
$$;

-- The days `notifications` already has, for the rows copied below.
DO $$
DECLARE
    first_day date;
    last_day date;
BEGIN
    SELECT min(to_date(right(c.relname, 8), 'YYYYMMDD')), max(to_date(right(c.relname, 8), 'YYYYMMDD'))
    INTO first_day, last_day
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname = 'notifications' AND c.relname ~ '_[0-9]{8}$';
    IF first_day IS NOT NULL THEN
        PERFORM herald_ensure_partitions(first_day, last_day);
    END IF;
END
$$;

-- One statement trigger per insert statement: a group commit of 500 notifications adds their
-- recipients in one more insert. Ids in `user_ids` are distinct (validated); the conflict clause
-- only keeps a hand-written duplicate from failing the insert.
CREATE FUNCTION herald_index_notification_recipients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notification_recipients (tenant_id, user_id, notification_id)
    SELECT inserted.tenant_id, recipient.user_id, inserted.id
    FROM inserted CROSS JOIN LATERAL unnest(inserted.user_ids) AS recipient(user_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- Created before the copy below: it locks `notifications` against inserts (SHARE ROW EXCLUSIVE)
-- until this migration commits, so every row is either copied or indexed by the trigger.
CREATE TRIGGER notifications_index_recipients
    AFTER INSERT ON notifications REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION herald_index_notification_recipients();

INSERT INTO notification_recipients (tenant_id, user_id, notification_id)
SELECT n.tenant_id, recipient.user_id, n.id
FROM notifications n CROSS JOIN LATERAL unnest(n.user_ids) AS recipient(user_id)
ON CONFLICT DO NOTHING;

DROP INDEX notifications_tenant_recipients;
"#;

const DOWN: &str = r#"
CREATE INDEX notifications_tenant_recipients ON notifications USING gin (tenant_id, user_ids);
DROP TRIGGER notifications_index_recipients ON notifications;
DROP FUNCTION herald_index_notification_recipients();
DROP TABLE notification_recipients;
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
