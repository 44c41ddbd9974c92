use serde_json::json;

use crate::helpers::*;

async fn put_user(app: &TestApp, user_id: &str, body: serde_json::Value) -> reqwest::Response {
    app.client
        .put(format!("{}/v1/users/{user_id}", app.address))
        .bearer_auth(&app.api_key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_is_created_then_updated() {
    let app = spawn_app().await;
    let response = put_user(&app, "u1", json!({"email": "a@example.com", "phone": "+14155550100", "locale": "en-US", "timezone": "America/New_York"})).await;
    assert_eq!(response.status(), 200);
    let created = json(response).await;
    assert_eq!(created["email"], "a@example.com");

    let response = put_user(&app, "u1", json!({"email": "b@example.com"})).await;
    assert_eq!(response.status(), 200);
    let updated = json(response).await;
    assert_eq!(updated["email"], "b@example.com");
    assert_eq!(updated["phone"], serde_json::Value::Null);
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn invalid_contact_data_is_a_422() {
    let app = spawn_app().await;
    let response = put_user(
        &app,
        "u1",
        json!({"email": "not-an-email", "phone": "0155 1234"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let error = json(response).await;
    assert_eq!(error["error"]["code"], "validation_failed");
    let fields: Vec<&str> = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["email", "phone"]);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    app.stop().await;
}

fn detail_fields(error: &serde_json::Value) -> Vec<String> {
    error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| detail["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn channel_data_is_stored_and_read_back_without_the_webhook_secret() {
    let app = spawn_app_with(|settings| settings.outbound.allow_private_networks = false).await;
    let channel_data = json!({
        "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/abc"},
        "discord": {"webhook_url": "https://discord.com/api/webhooks/1/token"},
        "telegram": {"chat_id": -1001234567890_i64},
        "webhook": {"url": "https://example.com/herald", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        "pushover": {"user_key": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "device": "iphone,desk"},
    });
    let response = put_user(&app, "u1", json!({"channel_data": channel_data})).await;
    assert_eq!(response.status(), 200);
    let stored = json(response).await;
    assert!(!stored.to_string().contains("whsec_"), "{stored}");

    let read = json(app.get("/v1/users/u1").await).await;
    assert_eq!(read["channel_data"]["slack"], channel_data["slack"]);
    assert_eq!(read["channel_data"]["discord"], channel_data["discord"]);
    assert_eq!(read["channel_data"]["telegram"], channel_data["telegram"]);
    assert_eq!(read["channel_data"]["pushover"], channel_data["pushover"]);
    assert_eq!(
        read["channel_data"]["webhook"],
        json!({"url": "https://example.com/herald", "has_secret": true})
    );
    assert!(!read.to_string().contains("whsec_"), "{read}");

    let missing = app.get("/v1/users/nobody").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["error"]["code"], "not_found");
    app.stop().await;
}

/// Recipients' URLs are checked against SSRF when they are given: only https, no credentials, no
/// loopback, private, link-local or metadata host; an unknown channel or field is named too.
#[tokio::test]
async fn channel_data_that_could_reach_internal_networks_is_a_422_naming_each_field() {
    let app = spawn_app_with(|settings| settings.outbound.allow_private_networks = false).await;
    let response = put_user(
        &app,
        "u1",
        json!({"channel_data": {
            "slack": {"webhook_url": "http://hooks.slack.com/services/T0/B0/abc"},
            "discord": {"webhook_url": "https://169.254.169.254/latest/meta-data"},
            "telegram": {"chat_id": "not a chat"},
            "webhook": {"url": "https://admin:pw@localhost/x", "secret": "plain-text"},
            "pushover": {"user_key": "my-email@example.com", "device": "all of them"},
        }}),
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        detail_fields(&json(response).await),
        [
            "channel_data.slack.webhook_url",
            "channel_data.discord.webhook_url",
            "channel_data.telegram.chat_id",
            "channel_data.webhook.url",
            "channel_data.webhook.secret",
            "channel_data.pushover.user_key",
            "channel_data.pushover.device",
        ]
    );

    // U+0000 cannot be stored: a 422 naming the field, never a 500 from the database.
    let nul = put_user(
        &app,
        "u1",
        json!({"channel_data": {"slack": {"webhook_url": "https://hooks.slack.com/a\u{0}b"}}}),
    )
    .await;
    assert_eq!(nul.status(), 422);
    assert_eq!(
        detail_fields(&json(nul).await),
        ["channel_data.slack.webhook_url"]
    );

    let unknown = put_user(
        &app,
        "u1",
        json!({"channel_data": {"pager": {"number": "1"}}}),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    let unknown = json(unknown).await;
    assert!(
        unknown["error"]["details"].to_string().contains("pager"),
        "{unknown}"
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_user_id_with_a_control_character_is_refused_or_not_found_never_a_500() {
    let app = spawn_app().await;
    let response = put_user(&app, "bad%00id", json!({"email": "a@example.com"})).await;
    assert_eq!(response.status(), 422);
    assert_eq!(detail_fields(&json(response).await), vec!["user_id"]);
    assert_eq!(app.get("/v1/users/bad%00id").await.status(), 404);
    assert_eq!(app.get("/v1/users/bad%01id").await.status(), 404);
    app.stop().await;
}
