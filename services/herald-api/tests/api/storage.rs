//! The database holds the domain's state machines and stays bounded: its triggers allow exactly the
//! moves the Rust transition functions allow, whole days are dropped after the retention, and
//! idempotency keys expire.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use herald_domain::{
    AttemptOutcome, Channel, DeliveryStatus, NotificationStatus, Priority, ProviderId, Vocabulary,
};
use herald_store::columns::Column;
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// Whether an UPDATE is accepted.
async fn accepted(app: &TestApp, sql: &str) -> bool {
    sea_orm::ConnectionTrait::execute_unprepared(app.database.connection(), sql)
        .await
        .is_ok()
}

#[tokio::test]
async fn the_database_allows_exactly_the_moves_the_domain_allows() {
    let app = spawn_app().await;
    for from in DeliveryStatus::ALL {
        for to in DeliveryStatus::ALL {
            let notification_id = Uuid::now_v7();
            let id = Uuid::new_v4();
            execute(
                &app.database,
                &format!(
                    "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status) \
                     VALUES ('{notification_id}', '{id}', '{}', 'u', 'sms', 'twilio', '{}')",
                    app.tenant_id,
                    from.as_str()
                ),
            )
            .await;
            let update = format!(
                "UPDATE deliveries SET status = '{}' WHERE notification_id = '{notification_id}' AND id = '{id}'",
                to.as_str()
            );
            assert_eq!(
                accepted(&app, &update).await,
                from.may_become(to),
                "delivery {from:?} -> {to:?}"
            );
        }
    }
    for from in NotificationStatus::ALL {
        for to in NotificationStatus::ALL {
            let id = Uuid::now_v7();
            execute(
                &app.database,
                &format!(
                    "INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at) \
                     VALUES ('{id}', '{}', '{}', 1, now())",
                    app.tenant_id,
                    from.as_str()
                ),
            )
            .await;
            let update = format!(
                "UPDATE notification_states SET status = '{}' WHERE id = '{id}'",
                to.as_str()
            );
            assert_eq!(
                accepted(&app, &update).await,
                from.may_become(to),
                "notification {from:?} -> {to:?}"
            );
        }
    }
    // Counters can never claim more final deliveries than there are.
    let id = Uuid::now_v7();
    execute(
        &app.database,
        &format!(
            "INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at) \
             VALUES ('{id}', '{}', 'accepted', 2, now())",
            app.tenant_id
        ),
    )
    .await;
    assert!(
        !accepted(
            &app,
            &format!("UPDATE notification_states SET deliveries_sent = 3 WHERE id = '{id}'")
        )
        .await
    );
    app.stop().await;
}

/// The providers each `provider` column's CHECK constraint allows, by table.
async fn providers_allowed(app: &TestApp) -> Vec<(String, Vec<String>)> {
    #[derive(Debug, sea_orm::FromQueryResult)]
    struct ConstraintRow {
        table_name: String,
        definition: String,
    }
    use sea_orm::{FromQueryResult, Statement};
    let rows = ConstraintRow::find_by_statement(Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        // A partition's copy of its parent's constraint is not local: one row per table.
        "SELECT conrelid::regclass::text AS table_name, pg_get_constraintdef(oid) AS definition \
         FROM pg_constraint WHERE conname LIKE '%\\_provider\\_known' AND conislocal ORDER BY 1",
    ))
    .all(app.database.connection())
    .await
    .unwrap();
    rows.into_iter()
        .map(|row| {
            // `CHECK ((provider = ANY (ARRAY['sendgrid'::text, …])))`: every other piece between
            // quotes is a name.
            let mut names: Vec<String> = row
                .definition
                .split('\'')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            names.sort();
            (row.table_name, names)
        })
        .collect()
}

#[tokio::test]
async fn every_provider_column_accepts_exactly_the_domains_providers() {
    let app = spawn_app().await;
    let mut expected: Vec<String> = ProviderId::ALL
        .iter()
        .map(|provider| provider.as_str().to_owned())
        .collect();
    expected.sort();
    let allowed = providers_allowed(&app).await;
    let tables: Vec<&str> = allowed.iter().map(|(table, _)| table.as_str()).collect();
    assert_eq!(
        tables,
        [
            "dead_letters",
            "deliveries",
            "delivery_attempts",
            "delivery_queue",
            "early_provider_reports",
            "status_events"
        ],
        "every table with a provider column has the constraint"
    );
    for (table, names) in &allowed {
        assert_eq!(
            names, &expected,
            "{table} allows the providers of ProviderId::ALL: a provider added in Rust needs a \
             migration that calls replace_provider_checks"
        );
    }
    let insert = |provider: &str| {
        format!(
            "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status) \
             VALUES ('{}', '{}', '{}', 'u', 'email', '{provider}', 'queued')",
            Uuid::now_v7(),
            Uuid::new_v4(),
            app.tenant_id
        )
    };
    for provider in ProviderId::ALL {
        assert!(
            accepted(&app, &insert(provider.as_str())).await,
            "{provider}"
        );
    }
    for misspelt in ["SendGrid", "mailgun", ""] {
        assert!(
            !accepted(&app, &insert(misspelt)).await,
            "{misspelt:?} is refused"
        );
    }
    app.stop().await;
}

/// The labels of the PostgreSQL enum `type_name`, in their order.
async fn enum_labels(app: &TestApp, type_name: &str) -> Vec<String> {
    let row = app
        .database
        .connection()
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT enum_range(NULL::{type_name})::text[] AS labels"),
        ))
        .await
        .unwrap()
        .unwrap();
    Vec::<String>::read(&row, "", "labels").unwrap()
}

fn spellings<T: Vocabulary>() -> Vec<String> {
    T::VALUES
        .iter()
        .map(|value| value.spelling().to_owned())
        .collect()
}

/// The store reads and binds each vocabulary by its spelling: the database's enum types must hold
/// the same spellings, in the same order (`priority`'s order is the claim order, high first).
#[tokio::test]
async fn every_database_enum_holds_exactly_the_domains_spellings_in_order() {
    let app = spawn_app().await;
    assert_eq!(enum_labels(&app, "channel").await, spellings::<Channel>());
    assert_eq!(enum_labels(&app, "priority").await, spellings::<Priority>());
    assert_eq!(
        enum_labels(&app, "notification_status").await,
        spellings::<NotificationStatus>()
    );
    assert_eq!(
        enum_labels(&app, "delivery_status").await,
        spellings::<DeliveryStatus>()
    );
    assert_eq!(
        enum_labels(&app, "attempt_outcome").await,
        spellings::<AttemptOutcome>()
    );
    app.stop().await;
}

/// A spelling this binary does not know (a newer release's channel, read during a rolling upgrade)
/// is an error naming the column, never a panic or a default.
#[tokio::test]
async fn an_unknown_spelling_in_a_vocabulary_column_is_an_error_naming_the_column() {
    let app = spawn_app().await;
    let row = app
        .database
        .connection()
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 'carrier_pigeon'::text AS channel, NULL::text AS status, \
                    ARRAY['email', 'fax']::text[] AS channels, 'email'::text AS known",
        ))
        .await
        .unwrap()
        .unwrap();
    let unknown = Channel::read(&row, "", "channel").unwrap_err().to_string();
    assert!(
        unknown.contains("`channel`") && unknown.contains("carrier_pigeon"),
        "{unknown}"
    );
    assert_eq!(
        Option::<DeliveryStatus>::read(&row, "", "status").unwrap(),
        None
    );
    let in_a_list = Vec::<Channel>::read(&row, "", "channels")
        .unwrap_err()
        .to_string();
    assert!(in_a_list.contains("`fax`"), "{in_a_list}");
    assert_eq!(Channel::read(&row, "", "known").unwrap(), Channel::Email);
    app.stop().await;
}

fn id_on(day: NaiveDate) -> Uuid {
    let millis = day
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis() as u64;
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        ((millis % 1000) * 1_000_000) as u32,
    ))
}

#[tokio::test]
async fn days_past_the_retention_are_dropped_whole_unless_they_hold_unfinished_notifications() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let (finished_day, unfinished_day, empty_day) = (
        today - Days::new(40),
        today - Days::new(39),
        today - Days::new(38),
    );
    // Under the maintenance lock, as the API's own maintenance task may be running too.
    execute(
        &app.database,
        &format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}); \
             SELECT herald_ensure_partitions('{finished_day}', '{empty_day}'); COMMIT",
            herald_store::maintenance::MAINTENANCE_LOCK
        ),
    )
    .await;
    for (day, status) in [(finished_day, "delivered"), (unfinished_day, "processing")] {
        let id = id_on(day);
        execute(
            &app.database,
            &format!(
                "INSERT INTO notifications (id, tenant_id, user_ids, channels, body, priority, request_hash, created_at) \
                 VALUES ('{id}', '{tenant}', ARRAY['u'], '{{sms}}', 'b', 'normal', '\\x00', '{day}'); \
                 INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at) \
                 VALUES ('{id}', '{tenant}', '{status}', 1, now())",
                tenant = app.tenant_id
            ),
        )
        .await;
    }

    let report = herald_store::maintenance::maintain_partitions(&app.database, today, 7, 30)
        .await
        .unwrap();
    assert!(!report.skipped);
    assert_eq!(report.days_dropped, vec![finished_day, empty_day]);
    assert_eq!(report.days_blocked, vec![unfinished_day]);
    let remaining = |day: NaiveDate| {
        format!(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_{}'",
            day.format("%Y%m%d")
        )
    };
    assert_eq!(
        app.count(&remaining(finished_day)).await,
        0,
        "all five tables' partitions dropped"
    );
    assert_eq!(app.count(&remaining(unfinished_day)).await, 5);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notification_recipients_{} WHERE user_id = 'u'",
            unfinished_day.format("%Y%m%d")
        ))
        .await,
        1,
        "the kept day's recipient row, in its own day"
    );
    assert_eq!(
        app.count(&remaining(today + Days::new(7))).await,
        5,
        "premade ahead"
    );
    app.stop().await;
}

/// One maintenance pass of this test's (30 days kept), once the API's own maintenance, which may
/// hold the lock at first, lets it run.
async fn maintain_once(
    app: &TestApp,
    today: NaiveDate,
) -> herald_store::maintenance::MaintenanceReport {
    for _ in 0..50 {
        let report = herald_store::maintenance::maintain_partitions(&app.database, today, 7, 30)
            .await
            .unwrap();
        if !report.skipped {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the maintenance lock stayed taken for 5 s");
}

/// Group history past the retention goes: members removed before it, and deleted groups with
/// their members. Current members, recent history, and every row of a group a notification still
/// has to expand stay, whatever their age.
#[tokio::test]
async fn group_history_past_the_retention_goes_unless_a_notification_still_needs_it() {
    let app = spawn_app().await;
    let tenant = app.tenant_id;
    let today = Utc::now().date_naive();
    let long_ago = "now() - interval '40 days'";
    let (kept, deleted, pending) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    execute(
        &app.database,
        &format!(
            "INSERT INTO groups (id, tenant_id, external_id, created_at) VALUES \
                 ('{kept}', '{tenant}', 'kept', {long_ago}), ('{pending}', '{tenant}', 'pending', {long_ago}); \
             INSERT INTO groups (id, tenant_id, external_id, created_at, deleted_at) VALUES \
                 ('{deleted}', '{tenant}', 'deleted', {long_ago}, {long_ago}); \
             INSERT INTO group_members (group_id, user_id, added_at, removed_at) VALUES \
                 ('{kept}', 'current', {long_ago}, NULL), \
                 ('{kept}', 'left-long-ago', {long_ago}, {long_ago}), \
                 ('{kept}', 'left-yesterday', {long_ago}, now() - interval '1 day'), \
                 ('{deleted}', 'member-of-deleted', {long_ago}, NULL), \
                 ('{pending}', 'left-long-ago', {long_ago}, {long_ago}); \
             INSERT INTO group_expansions (notification_id, group_id, tenant_id, as_of) \
                 VALUES ('{}', '{pending}', '{tenant}', {long_ago})",
            id_on(today - Days::new(41))
        ),
    )
    .await;

    maintain_once(&app, today).await;
    let members =
        |group: Uuid| format!("SELECT count(*) FROM group_members WHERE group_id = '{group}'");
    assert_eq!(
        app.count(&members(kept)).await,
        2,
        "current and recent history stay"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM group_members WHERE group_id = '{kept}' AND user_id = 'left-long-ago'"
        ))
        .await,
        0
    );
    assert_eq!(app.count(&members(deleted)).await, 0);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM groups WHERE id = '{deleted}'"
        ))
        .await,
        0,
        "a deleted group goes once empty"
    );
    assert_eq!(
        app.count(&members(pending)).await,
        1,
        "a group still to be expanded keeps its history"
    );
    app.stop().await;
}

/// Rows of a day without partitions of its own live in the default partitions; past the
/// retention only a final notification's deliveries and attempts go from there, never those of one
/// still in progress.
#[tokio::test]
async fn retention_deletes_from_the_default_partitions_only_what_is_final() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let old_day = today - Days::new(60);
    let mut ids = Vec::new();
    for status in ["delivered", "processing"] {
        let id = id_on(old_day);
        execute(
            &app.database,
            &format!(
                "INSERT INTO notifications (id, tenant_id, user_ids, channels, body, priority, request_hash, created_at) \
                 VALUES ('{id}', '{tenant}', ARRAY['u'], '{{sms}}', 'b', 'normal', '\\x00', '{old_day}'); \
                 INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at) \
                 VALUES ('{id}', '{tenant}', '{status}', 1, now()); \
                 INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status) \
                 VALUES ('{id}', '{delivery}', '{tenant}', 'u', 'sms', 'twilio', '{delivery_status}')",
                tenant = app.tenant_id,
                delivery = Uuid::new_v4(),
                delivery_status = if status == "delivered" { "sent" } else { "queued" },
            ),
        )
        .await;
        ids.push(id);
    }
    // The old day has no partition: its rows are in the default ones (the API's own maintenance
    // may already be at work on them, so no count is asserted here).
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM deliveries_default WHERE notification_id = '{}'",
            ids[1]
        ))
        .await,
        1
    );

    maintain_once(&app, today).await;
    let deliveries_of =
        |id: Uuid| format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}'");
    let recipients_of = |id: Uuid| {
        format!("SELECT count(*) FROM notification_recipients WHERE notification_id = '{id}'")
    };
    assert_eq!(app.count(&deliveries_of(ids[0])).await, 0, "final: deleted");
    assert_eq!(
        app.count(&recipients_of(ids[0])).await,
        0,
        "final: its recipient row deleted with it"
    );
    assert_eq!(app.count(&recipients_of(ids[1])).await, 1);
    assert_eq!(
        app.count(&deliveries_of(ids[1])).await,
        1,
        "in progress: its delivery is kept"
    );
    app.stop().await;
}

/// The newest migrations can be undone and done again, and the moves follow: `sending → cancelled`
/// exists only with migration 000012.
#[tokio::test]
async fn the_newest_migrations_can_be_undone_and_done_again() {
    use herald_migrations::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let tenant_id = app.tenant_id;
    // The API's background work (relay, maintenance) would contend with the schema changes.
    let database = herald_testing::connect(&app.settings).await;
    app.stop().await;
    let connection = database.connection();
    let held_delivery_may_be_cancelled = || async {
        let notification_id = Uuid::now_v7();
        let id = Uuid::new_v4();
        execute(
            &database,
            &format!(
                "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status) \
                 VALUES ('{notification_id}', '{id}', '{tenant_id}', 'u', 'sms', 'twilio', 'sending')"
            ),
        )
        .await;
        ConnectionTrait::execute_unprepared(
            connection,
            &format!(
                "UPDATE deliveries SET status = 'cancelled' \
                 WHERE notification_id = '{notification_id}' AND id = '{id}'"
            ),
        )
        .await
        .is_ok()
    };
    assert!(held_delivery_may_be_cancelled().await);

    // A daily quota alone: a row 000018's undoing must drop, having no rate to keep.
    execute(
        &database,
        &format!(
            "INSERT INTO tenant_ingest_limits (tenant_id, notifications_per_day) \
             VALUES ('{tenant_id}', 7)"
        ),
    )
    .await;
    // Undoes 000023 (export leases), 000022 (groups), 000021 (pushover), 000020 (provider names), 000019 (recipient index), 000018 (tenant ingest quotas), 000017 (fair delivery
    // queue), 000016 (tenant ingest limits), 000015 (subscription backlogs), 000014 (retention),
    // 000013 (early reports), 000012 (held cancellations), 000011, 000010 and 000009.
    Migrator::down(connection, Some(15)).await.unwrap();
    assert!(
        !held_delivery_may_be_cancelled().await,
        "without 000012 a held delivery cannot be cancelled"
    );
    // A notification accepted before 000019: its recipients are indexed when it is done again.
    let older_notification = Uuid::now_v7();
    execute(
        &database,
        &format!(
            "INSERT INTO notifications (id, tenant_id, user_ids, channels, body, priority, request_hash, created_at) \
             VALUES ('{older_notification}', '{tenant_id}', ARRAY['u1', 'u2'], '{{sms}}', 'b', 'normal', '\\x00', now())"
        ),
    )
    .await;
    Migrator::up(connection, None).await.unwrap();
    assert!(held_delivery_may_be_cancelled().await);
    assert_eq!(
        count(
            &database,
            &format!(
                "SELECT count(*) FROM notification_recipients WHERE notification_id = '{older_notification}'"
            )
        )
        .await,
        2
    );
    assert_eq!(
        count(&database, "SELECT count(*) FROM notification_cancellations").await,
        0
    );
}

#[tokio::test]
async fn an_idempotency_key_can_be_used_again_after_its_window() {
    let app = spawn_app().await;
    let mut first = notification(&["u1"]);
    first["idempotency_key"] = json!("weekly-report");
    assert_eq!(app.post_notification(&first).await.status(), 202);
    let mut changed = first.clone();
    changed["data"]["value"] = json!(8);
    assert_eq!(app.post_notification(&changed).await.status(), 409);

    execute(
        &app.database,
        "UPDATE idempotency_keys SET created_at = now() - interval '2 days'",
    )
    .await;
    let expired = herald_store::notifications::expire_idempotency_keys(
        &app.database,
        Duration::from_secs(24 * 3600),
        100,
    )
    .await
    .unwrap();
    // The API's own maintenance (it runs at start-up) may have expired it first.
    assert!(expired <= 1, "{expired}");
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
    assert_eq!(app.post_notification(&changed).await.status(), 202);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 2);
    app.stop().await;
}
