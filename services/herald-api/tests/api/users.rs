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
