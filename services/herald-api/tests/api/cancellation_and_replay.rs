//! Cancellation and dead-letter replay in the API and the store (docs/DESIGN.md, "Cancellation",
//! "Dead letters"): the state the transactions leave behind, checked row by row, and a
//! cancellation racing the scheduler's release. The whole-stack proofs (nothing reaches the
//! simulator) are in herald-worker's tests.

use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

async fn seed(app: &TestApp, sql: &str) {
    herald_testing::execute(&app.database, sql).await;
}

/// Accepts an SMS notification to `u1` and `u2`, whose deliveries each test then seeds; its id.
async fn accept_sms_to_u1_and_u2(app: &TestApp) -> String {
    let mut request = notification(&["u1", "u2"]);
    request["channels"] = json!(["sms"]);
    json(app.post_notification(&request).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_replay_takes_the_delivery_out_of_the_failed_counter_and_a_cancellation_stops_it() {
    let app = spawn_app().await;
    let id = accept_sms_to_u1_and_u2(&app).await;
    let tenant = app.tenant_id;
    let (sent, failed, reported) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // What the worker leaves: u1 sent, u2 failed after 3 attempts with its dead letter; the
    // counters say partially delivered.
    seed(
        &app,
        &format!(
            "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status, attempts, last_error) VALUES \
               ('{id}', '{sent}', '{tenant}', 'u1', 'sms', 'twilio', 'sent', 1, NULL), \
               ('{id}', '{failed}', '{tenant}', 'u2', 'sms', 'twilio', 'failed', 3, 'gave up after 3 attempts'); \
             INSERT INTO dead_letters (tenant_id, notification_id, delivery_id, user_id, channel, provider, attempts, last_error) \
               VALUES ('{tenant}', '{id}', '{failed}', 'u2', 'sms', 'twilio', 3, 'gave up after 3 attempts'); \
             UPDATE notification_states SET status = 'partially_delivered', deliveries_sent = 1, deliveries_failed = 1 \
               WHERE id = '{id}'"
        ),
    )
    .await;

    let (_, other_key) = create_tenant(&app.settings, &app.database, "other").await;
    let foreign = app
        .client
        .post(format!("{}/v1/dead-letters/{failed}/replay", app.address))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    let foreign_list = app
        .client
        .get(format!("{}/v1/dead-letters", app.address))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(json(foreign_list).await["items"], json!([]));
    // A delivery failed without a dead letter (a provider's later report) is no dead letter.
    let no_letter = app
        .post_json(&format!("/v1/dead-letters/{reported}/replay"), &json!({}))
        .await;
    assert_eq!(no_letter.status(), 404);

    let replayed = app
        .post_json(&format!("/v1/dead-letters/{failed}/replay"), &json!({}))
        .await;
    assert_eq!(replayed.status(), 202);
    let body = json(replayed).await;
    assert_eq!(body["delivery_id"], failed.to_string());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["notification_status"], "processing");
    let view = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(view["status"], "processing");
    assert_eq!(
        view["delivery_summary"],
        json!({"expected": 2, "sent": 1, "failed": 0, "skipped": 0, "cancelled": 0, "expansions_pending": 0})
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM deliveries WHERE id = '{failed}' AND status = 'queued' \
             AND attempts = 3 AND attempt_budget_start = 3"
        ))
        .await,
        1,
        "queued, attempts kept, a fresh budget from 3"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM delivery_queue WHERE delivery_id = '{failed}' \
             AND provider = 'twilio' AND priority = 'normal' AND due_at <= now()"
        ))
        .await,
        1,
        "due now"
    );
    let letters = json(app.get("/v1/dead-letters").await).await;
    assert!(letters["items"][0]["replayed_at"].is_string(), "{letters}");

    let again = app
        .post_json(&format!("/v1/dead-letters/{failed}/replay"), &json!({}))
        .await;
    assert_eq!(again.status(), 409);
    let body = json(again).await;
    assert_eq!(body["error"]["code"], "delivery_not_failed");
    assert_eq!(body["error"]["details"]["status"], "queued");

    // Cancelled while its replay waits: the queued delivery is cancelled and counted.
    let cancelled = app
        .post_json(&format!("/v1/notifications/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancelled.status(), 200);
    let body = json(cancelled).await;
    assert_eq!(
        body,
        json!({"id": id, "status": "cancelled", "deliveries_cancelled": 1,
               "deliveries_in_flight": 0, "deliveries_not_created": 0})
    );
    let view = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(
        view["delivery_summary"],
        json!({"expected": 2, "sent": 1, "failed": 0, "skipped": 0, "cancelled": 1, "expansions_pending": 0})
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM delivery_queue WHERE delivery_id = '{failed}'"
        ))
        .await,
        0
    );
    let after_cancel = app
        .post_json(&format!("/v1/dead-letters/{failed}/replay"), &json!({}))
        .await;
    assert_eq!(after_cancel.status(), 409);
    assert_eq!(
        json(after_cancel).await["error"]["code"],
        "notification_cancelled"
    );
    app.stop().await;
}

/// A replayed delivery that was sent and then reported failed by its provider has no new dead
/// letter: its old, replayed letter must not replay it again (that would take another delivery's
/// failure out of the counter and count this one sent twice).
#[tokio::test]
async fn a_dead_letter_is_replayed_once_even_after_its_resend_is_reported_failed() {
    let app = spawn_app().await;
    let id = accept_sms_to_u1_and_u2(&app).await;
    let tenant = app.tenant_id;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    // Both failed for good, each with its letter.
    seed(
        &app,
        &format!(
            "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status, attempts) VALUES \
               ('{id}', '{first}', '{tenant}', 'u1', 'sms', 'twilio', 'failed', 3), \
               ('{id}', '{second}', '{tenant}', 'u2', 'sms', 'twilio', 'failed', 3); \
             INSERT INTO dead_letters (tenant_id, notification_id, delivery_id, user_id, channel, provider, attempts, last_error) VALUES \
               ('{tenant}', '{id}', '{first}', 'u1', 'sms', 'twilio', 3, 'gave up'), \
               ('{tenant}', '{id}', '{second}', 'u2', 'sms', 'twilio', 3, 'gave up'); \
             UPDATE notification_states SET status = 'failed', deliveries_failed = 2 WHERE id = '{id}'"
        ),
    )
    .await;
    let replayed = app
        .post_json(&format!("/v1/dead-letters/{first}/replay"), &json!({}))
        .await;
    assert_eq!(replayed.status(), 202);
    // The resend is sent (counted), then Twilio's callback reports it failed: no new letter.
    seed(
        &app,
        &format!(
            "DELETE FROM delivery_queue WHERE delivery_id = '{first}'; \
             UPDATE deliveries SET status = 'sending' WHERE id = '{first}'; \
             UPDATE deliveries SET status = 'sent' WHERE id = '{first}'; \
             UPDATE deliveries SET status = 'failed' WHERE id = '{first}'; \
             UPDATE notification_states SET deliveries_sent = 1, status = 'partially_delivered' WHERE id = '{id}'"
        ),
    )
    .await;

    let again = app
        .post_json(&format!("/v1/dead-letters/{first}/replay"), &json!({}))
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(json(again).await["error"]["code"], "delivery_not_failed");
    let view = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(
        view["delivery_summary"],
        json!({"expected": 2, "sent": 1, "failed": 1, "skipped": 0, "cancelled": 0, "expansions_pending": 0}),
        "the other delivery's failure is still counted"
    );
    app.stop().await;
}

/// A replay that PostgreSQL picks to break a deadlock (here with a session that holds the
/// delivery's queue row and then wants the delivery, as a worker's pump does) runs again and
/// succeeds, instead of answering 503 (found by the API contract test: concurrent replays).
#[tokio::test]
async fn a_replay_rolled_back_to_break_a_deadlock_runs_again_and_succeeds() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let app = spawn_app().await;
    let id = accept_sms_to_u1_and_u2(&app).await;
    let tenant = app.tenant_id;
    let failed = Uuid::new_v4();
    seed(
        &app,
        &format!(
            "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status, attempts) VALUES \
               ('{id}', '{failed}', '{tenant}', 'u2', 'sms', 'twilio', 'failed', 3); \
             INSERT INTO dead_letters (tenant_id, notification_id, delivery_id, user_id, channel, provider, attempts, last_error) \
               VALUES ('{tenant}', '{id}', '{failed}', 'u2', 'sms', 'twilio', 3, 'gave up'); \
             UPDATE notification_states SET status = 'failed', deliveries_failed = 1 WHERE id = '{id}'"
        ),
    )
    .await;

    // The other session: the delivery's queue row, not committed, so the replay's insert of it
    // waits. Its own deadlock check comes late, so that the replay's finds the deadlock first.
    let session = herald_testing::connect(&app.settings).await;
    let other = session.connection().begin().await.unwrap();
    other
        .execute_unprepared(&format!(
            "SET LOCAL statement_timeout = 0; SET LOCAL deadlock_timeout = '20s'; \
             INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at) \
             VALUES ('{failed}', '{id}', 'twilio', '{tenant}', 'normal', now())"
        ))
        .await
        .unwrap();
    let replay = {
        let client = app.client.clone();
        let url = format!("{}/v1/dead-letters/{failed}/replay", app.address);
        let api_key = app.api_key.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(api_key)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        })
    };
    // The replay now holds the delivery and waits for the queue row; the other session wants
    // the delivery: a deadlock, which PostgreSQL breaks by rolling the replay back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    other
        .execute_unprepared(&format!(
            "UPDATE deliveries SET updated_at = now() WHERE notification_id = '{id}' AND id = '{failed}'"
        ))
        .await
        .expect("the replay, not this session, is rolled back");
    other.rollback().await.unwrap();

    let replayed = replay.await.unwrap();
    assert_eq!(replayed.status(), 202, "{:?}", replayed.text().await);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM delivery_queue WHERE delivery_id = '{failed}'"
        ))
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn cancellations_racing_the_scheduler_all_end_cancelled_without_a_deadlock() {
    let app = spawn_app().await;
    let notifications = 40;
    let due = Utc::now() + chrono::Duration::milliseconds(1500);
    let mut ids = Vec::new();
    for _ in 0..notifications {
        let mut request = notification(&["u1"]);
        request["scheduled_for"] = json!(due.to_rfc3339());
        let response = app.post_notification(&request).await;
        assert_eq!(response.status(), 202);
        ids.push(json(response).await["id"].as_str().unwrap().to_owned());
    }
    // Cancel around the due time, while the scheduler (every second) releases them.
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait.saturating_sub(Duration::from_millis(300))).await;
    let mut answers: Vec<(u16, Value)> = Vec::new();
    let app_ref = &app;
    for chunk in ids.chunks(4) {
        let cancels = chunk.iter().map(|id| async move {
            let app = app_ref;
            let response = app
                .post_json(&format!("/v1/notifications/{id}/cancel"), &json!({}))
                .await;
            let status = response.status().as_u16();
            (status, json(response).await)
        });
        answers.extend(join_all(cancels).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["status"], "cancelled");
    }
    let id_list: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    let id_list = id_list.join(", ");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notification_states WHERE id IN ({id_list}) AND status = 'cancelled'"
        ))
        .await,
        notifications as i64
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM scheduled_notifications WHERE notification_id IN ({id_list})"
        ))
        .await,
        0
    );
    // Past the due time and a scheduler pass: nothing is moved back or released afterwards.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notification_states WHERE id IN ({id_list}) AND status = 'cancelled'"
        ))
        .await,
        notifications as i64
    );
    app.stop().await;
}
