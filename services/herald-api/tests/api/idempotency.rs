use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_retry_with_the_same_key_returns_the_same_id_and_creates_nothing() {
    let app = spawn_app().await;
    let mut body = notification(&["u1"]);
    body["idempotency_key"] = json!("order-42");

    let first = json(app.post_notification(&body).await).await;
    let second_response = app.post_notification(&body).await;
    assert_eq!(second_response.status(), 202);
    let second = json(second_response).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1);

    let records = consume(
        &app.settings.kafka.brokers,
        &app.settings.kafka.topic,
        2,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(records.len(), 1, "published once");
    app.stop().await;
}

#[tokio::test]
async fn the_idempotency_key_header_works_like_the_body_field() {
    let app = spawn_app().await;
    let send = || async {
        app.client
            .post(format!("{}/v1/notifications", app.address))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", "header-key")
            .json(&notification(&["u1"]))
            .send()
            .await
            .unwrap()
    };
    let first = json(send().await).await;
    let second = json(send().await).await;
    assert_eq!(first["id"], second["id"]);

    let mut same_key_in_body = notification(&["u1"]);
    same_key_in_body["idempotency_key"] = json!("header-key");
    let third = json(app.post_notification(&same_key_in_body).await).await;
    assert_eq!(third["id"], first["id"]);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn reusing_a_key_with_a_different_request_is_a_409() {
    let app = spawn_app().await;
    let mut body = notification(&["u1"]);
    body["idempotency_key"] = json!("k");
    let first = json(app.post_notification(&body).await).await;

    body["data"]["value"] = json!(8);
    let response = app.post_notification(&body).await;
    assert_eq!(response.status(), 409);
    let error = json(response).await;
    assert_eq!(error["error"]["code"], "idempotency_conflict");
    assert_eq!(error["error"]["details"]["existing_id"], first["id"]);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_notification() {
    let app = spawn_app().await;
    let mut body = notification(&["u1"]);
    body["idempotency_key"] = json!("burst");
    let responses = futures::future::join_all((0..20).map(|_| app.post_notification(&body))).await;
    let mut ids = std::collections::HashSet::new();
    for response in responses {
        assert_eq!(response.status(), 202);
        ids.insert(json(response).await["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn keys_are_scoped_to_the_tenant() {
    let app = spawn_app().await;
    let (_, other_key) = create_tenant(&app.settings, &app.database, "other").await;
    let mut body = notification(&["u1"]);
    body["idempotency_key"] = json!("shared");
    let mine = json(app.post_notification(&body).await).await;
    let theirs: serde_json::Value = app
        .client
        .post(format!("{}/v1/notifications", app.address))
        .bearer_auth(&other_key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(mine["id"], theirs["id"]);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 2);
    app.stop().await;
}
