use sea_orm_migration::prelude::*;

/// Retention never deletes unfinished work (docs/DESIGN.md, "Retention"):
/// * A day is checked for unfinished notifications under an `EXCLUSIVE` lock of its state
///   partition, taken before the check: a dead-letter replay (which locks the notification's state
///   row first, `FOR UPDATE`) either finished before it, and the day is kept if the replay reopened
///   a notification, or waits until the day is dropped, and finds nothing to replay. Before, a
///   replay between the check and the `DROP` was lost with its day.
/// * The default partitions (rows of days that had no partition of their own) lose only the
///   deliveries and attempts of notifications that are final; before, every delivery older than
///   the retention went, unfinished or not.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
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
            EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I, %I',
                           'delivery_attempts_' || to_char(day, 'YYYYMMDD'),
                           'deliveries_' || to_char(day, 'YYYYMMDD'),
                           states_partition,
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
END
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    /// The function stays: the previous version differs only in deleting more.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
