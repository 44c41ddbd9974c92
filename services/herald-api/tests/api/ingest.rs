use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn an_accepted_notification_is_in_postgres_and_on_the_topic_keyed_by_recipient() {
    let app = spawn_app().await;

    let response = app.post_notification(&notification(&["u1", "u2"])).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().contains_key("x-response-time"));
    let body = json(response).await;
    assert_eq!(body["status"], "accepted");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();

    let stored = app
        .count(&format!(
            "SELECT count(*) FROM notifications WHERE id = '{id}' AND tenant_id = '{}'",
            app.tenant_id
        ))
        .await;
    assert_eq!(stored, 1, "a 202 means the notification is in PostgreSQL");

    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        2,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(records.len(), 2, "one record per recipient");
    let mut keys: Vec<&str> = records.iter().map(|record| record.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{}:u1", app.tenant_id),
            format!("{}:u2", app.tenant_id)
        ]
    );
    for record in &records {
        assert_eq!(record.envelope.notification_id, id);
        assert_eq!(record.envelope.tenant_id, app.tenant_id);
        assert_eq!(record.envelope.version, 2);
        assert_eq!(record.envelope.priority, herald_domain::Priority::Normal);
    }
    // Thin records: the content is read from PostgreSQL, not copied per recipient.
    let with_content = app
        .count(&format!(
            "SELECT count(*) FROM notifications WHERE id = '{id}' \
             AND body = 'Pressure {{{{value}}}} on {{{{machine}}}}' AND data->>'machine' = 'press-4'"
        ))
        .await;
    assert_eq!(with_content, 1);

    let outbox_emptied = eventually(Duration::from_secs(10), || async {
        app.count("SELECT count(*) FROM outbox_batches").await == 0
    })
    .await;
    assert!(outbox_emptied, "acknowledged batches leave the outbox");
    app.stop().await;
}

#[tokio::test]
async fn one_recipients_notifications_share_a_partition_and_keep_their_order() {
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for round in 0..30 {
        let mut body = notification(&["same-user", &format!("other-{round}")]);
        body["data"]["value"] = json!(round);
        let response = app.post_notification(&body).await;
        assert_eq!(response.status(), 202);
        sent.push(
            json(response).await["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        60,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(records.len(), 60);
    let same_user: Vec<_> = records
        .iter()
        .filter(|record| record.envelope.user_id == "same-user")
        .collect();
    let partitions: std::collections::HashSet<i32> =
        same_user.iter().map(|record| record.partition).collect();
    assert_eq!(partitions.len(), 1, "one recipient, one partition");
    let received_order: Vec<Uuid> = same_user
        .iter()
        .map(|record| record.envelope.notification_id)
        .collect();
    assert_eq!(received_order, sent, "in acceptance order");

    let used_partitions: HashMap<i32, usize> =
        records.iter().fold(HashMap::new(), |mut counts, record| {
            *counts.entry(record.partition).or_default() += 1;
            counts
        });
    assert!(
        used_partitions.len() > 1,
        "different recipients spread over partitions"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_accepts_valid_items_and_reports_invalid_ones_in_order() {
    let app = spawn_app().await;
    let body = json!({"notifications": [
        notification(&["a"]),
        {"user_ids": ["b"], "channels": ["pigeon"], "content": {"body": "x"}},
        {"user_ids": "c", "channels": ["sms"], "content": {"body": "x"}},
        notification(&["d"]),
    ]});
    let response = app.post_json("/v1/notifications/batch", &body).await;
    assert_eq!(response.status(), 202);
    let body = json(response).await;
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 2);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["error"]["code"], "validation_failed");
    assert_eq!(
        results[1]["error"]["details"][0]["field"],
        "notifications[1].channels[0]"
    );
    assert_eq!(
        results[2]["error"]["details"][0]["field"],
        "notifications[2].user_ids"
    );
    assert_eq!(results[3]["status"], "accepted");
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["index"], index);
    }
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 2);
    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        2,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(records.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_full_batch_of_1000_is_accepted_and_published() {
    let app = spawn_app().await;
    let items: Vec<_> = (0..1000)
        .map(|index| notification(&[&format!("user-{index}")]))
        .collect();
    let response = app
        .post_json(
            "/v1/notifications/batch",
            &json!({ "notifications": items }),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(json(response).await["accepted"], 1000);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1000);
    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        1000,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(ids_on_topic(&records).len(), 1000);
    app.stop().await;
}

#[tokio::test]
async fn a_scheduled_notification_is_held_until_due_then_published() {
    let app = spawn_app().await;
    let mut body = notification(&["later"]);
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    body["scheduled_for"] = json!(due.to_rfc3339());
    let response = app.post_notification(&body).await;
    assert_eq!(response.status(), 202);
    let accepted = json(response).await;
    assert_eq!(accepted["status"], "scheduled");
    let id = accepted["id"].as_str().unwrap().to_owned();

    let early = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        1,
        Duration::from_millis(1500),
    )
    .await;
    assert!(early.is_empty(), "not published before it is due");

    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].envelope.notification_id.to_string(), id);
    let view = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(view["status"], "accepted");
    app.stop().await;
}
