use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn a_notification_can_be_read_back() {
    let app = spawn_app().await;
    let mut body = notification(&["u1", "u2"]);
    body["priority"] = json!("high");
    let id = json(app.post_notification(&body).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = app.get(&format!("/v1/notifications/{id}")).await;
    assert_eq!(response.status(), 200);
    let view = json(response).await;
    assert_eq!(view["id"], id);
    assert_eq!(view["status"], "accepted");
    assert_eq!(view["user_ids"], json!(["u1", "u2"]));
    assert_eq!(view["channels"], json!(["email", "sms"]));
    assert_eq!(view["priority"], "high");
    assert_eq!(view["content"]["subject"], "Alert");
    assert_eq!(view["data"]["value"], 7);
    assert!(view["deliveries"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_notifications() {
    let app = spawn_app().await;
    let id = json(app.post_notification(&notification(&["u1"])).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_key) = create_tenant(&app.settings, &app.database, "intruder").await;
    let as_other = |path: String| {
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&other_key)
            .send()
    };
    assert_eq!(
        as_other(format!("/v1/notifications/{id}"))
            .await
            .unwrap()
            .status(),
        404
    );
    let page: Value = as_other("/v1/notifications".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn lists_page_by_cursor_newest_first_and_filter_by_user_and_status() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for index in 0..7 {
        let user = if index % 2 == 0 { "even" } else { "odd" };
        let body = json(app.post_notification(&notification(&[user])).await).await;
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.reverse(); // newest first

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/notifications?limit=3".to_owned(),
            Some(cursor) => format!("/v1/notifications?limit=3&cursor={cursor}"),
        };
        let page = json(app.get(&path).await).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every notification once, newest first");

    let odd = json(app.get("/v1/notifications?user_id=odd").await).await;
    assert_eq!(odd["items"].as_array().unwrap().len(), 3);
    let accepted = json(app.get("/v1/notifications?status=accepted&limit=100").await).await;
    assert_eq!(accepted["items"].as_array().unwrap().len(), 7);
    let failed = json(app.get("/v1/notifications?status=failed").await).await;
    assert!(failed["items"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        json(ready).await,
        json!({"ready": true, "postgres": true, "redis": true, "kafka": true})
    );

    app.post_notification(&notification(&["u1"])).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("herald_notifications_accepted_total"));
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    let openapi = json(
        app.client
            .get(format!("{}/openapi.json", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for path in [
        "/v1/notifications",
        "/v1/notifications/batch",
        "/v1/notifications/{id}",
        "/v1/users/{user_id}",
        "/readyz",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_broker_is_unreachable() {
    let app =
        spawn_app_with(|settings| settings.kafka.brokers = format!("127.0.0.1:{}", free_port()))
            .await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body = json(ready).await;
    assert_eq!(body["kafka"], false);
    assert_eq!(body["postgres"], true);
    app.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("content-encoding").unwrap(), "gzip");
    app.stop().await;
}
