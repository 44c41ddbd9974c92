//! Priority lanes, the API's part (docs/DESIGN.md, "Priority lanes"): `high` notifications are
//! produced to the high-priority topic and `normal` and `low` ones to the main topic, whether the
//! fast path publishes them or the outbox relay does.

use std::collections::HashMap;
use std::time::Duration;

use herald_domain::Priority;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// Waits until every outbox batch is published, then reads both topics in full: which notification
/// ids each holds, with their envelopes' priorities.
async fn published_by_topic(app: &TestApp) -> (HashMap<Uuid, Priority>, HashMap<Uuid, Priority>) {
    let published = eventually(Duration::from_secs(20), || async {
        app.count("SELECT count(*) FROM outbox_batches").await == 0
    })
    .await;
    assert!(published, "every outbox batch is published");
    let read = |topic: String| async move {
        // Everything is acknowledged already: reading until the deadline (joining a group takes a
        // few seconds) shows all there is, and nothing else.
        consume(
            &app.settings.kafka.brokers,
            &topic,
            usize::MAX,
            Duration::from_secs(8),
        )
        .await
        .into_iter()
        .map(|record| (record.envelope.notification_id, record.envelope.priority))
        .collect::<HashMap<_, _>>()
    };
    tokio::join!(
        read(app.settings.kafka.topic.clone()),
        read(app.settings.kafka.high_priority_topic())
    )
}

#[tokio::test]
async fn the_fast_path_produces_high_priority_notifications_to_their_own_topic() {
    let app = spawn_app().await;
    let mut ids = HashMap::new();
    for priority in ["high", "normal", "low"] {
        let mut body = notification(&["u1"]);
        body["priority"] = json!(priority);
        let response = app.post_notification(&body).await;
        assert_eq!(response.status(), 202);
        let id: Uuid = json(response).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        ids.insert(priority, id);
    }

    let (main, high) = published_by_topic(&app).await;
    assert_eq!(high, HashMap::from([(ids["high"], Priority::High)]));
    assert_eq!(
        main,
        HashMap::from([
            (ids["normal"], Priority::Normal),
            (ids["low"], Priority::Low)
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_relay_produces_high_priority_notifications_to_their_own_topic() {
    let app = spawn_app().await;
    // Committed behind the API, as a crashed replica leaves them: only the relay publishes these.
    let mut ids = HashMap::new();
    for priority in ["high", "low"] {
        let id = Uuid::now_v7();
        execute(
            &app.database,
            &format!(
                "INSERT INTO notifications (id, tenant_id, user_ids, channels, body, data, priority, request_hash, created_at) \
                 VALUES ('{id}', '{tenant}', ARRAY['u1'], '{{sms}}', 'hello', '{{}}', '{priority}', '\\x00', now()); \
                 INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at) \
                 VALUES ('{id}', '{tenant}', 'accepted', 1, now());",
                tenant = app.tenant_id
            ),
        )
        .await;
        ids.insert(priority, id);
    }
    execute(
        &app.database,
        &format!(
            "INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at) \
             VALUES ('{}', ARRAY['{}', '{}']::uuid[], 2, now() - interval '1 hour')",
            Uuid::now_v7(),
            ids["high"],
            ids["low"]
        ),
    )
    .await;

    let (main, high) = published_by_topic(&app).await;
    assert_eq!(high, HashMap::from([(ids["high"], Priority::High)]));
    assert_eq!(main, HashMap::from([(ids["low"], Priority::Low)]));
    app.stop().await;
}
