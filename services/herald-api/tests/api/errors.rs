//! Every documented error status, with its JSON body.

use serde_json::{json, Value};

use crate::helpers::*;

async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "application/json"
    );
    let body = json(response).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    body
}

fn raw_post(app: &TestApp, path: &str, body: &'static str) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body(body)
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let response = raw_post(&app, "/v1/notifications", r#"{"user_ids": ["#)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "malformed_json").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("line 1"));
    let response = raw_post(&app, "/v1/notifications/batch", "not json")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "malformed_json").await;
    app.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_api_keys_are_a_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/v1/notifications", app.address))
        .json(&notification(&["u1"]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    assert_error(response, 401, "unauthorized").await;

    let response = app
        .client
        .get(format!("{}/v1/notifications", app.address))
        .bearer_auth("hk_not-a-key")
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "unauthorized").await;
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_notifications_are_a_404_and_wrong_methods_a_405() {
    let app = spawn_app().await;
    assert_error(app.get("/v2/anything").await, 404, "not_found").await;
    assert_error(
        app.get(&format!("/v1/notifications/{}", uuid::Uuid::now_v7()))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/v1/notifications/not-a-uuid").await,
        404,
        "not_found",
    )
    .await;
    let response = app
        .client
        .delete(format!("{}/v1/notifications", app.address))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    let allow = response.headers().get("allow").cloned();
    assert_error(response, 405, "method_not_allowed").await;
    assert_eq!(
        allow.unwrap(),
        "POST, GET",
        "Allow names the route's methods"
    );
    // The operations routes too, whatever the method (schemathesis tries TRACE).
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let response = app
            .client
            .request(reqwest::Method::TRACE, format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let allow = response.headers().get("allow").cloned();
        assert_error(response, 405, "method_not_allowed").await;
        assert_eq!(allow.unwrap(), "GET", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_document_given_as_an_array_is_refused_at_every_level() {
    let app = spawn_app().await;
    // serde reads a struct from an array (its fields in order): `[null, null]` was stored as
    // empty contacts.
    let put_user = |body: Value| {
        app.client
            .put(format!("{}/v1/users/u1", app.address))
            .bearer_auth(&app.api_key)
            .json(&body)
            .send()
    };
    for (body, field) in [
        (json!({"channel_data": [null, null]}), "channel_data"),
        (
            json!({"channel_data": {"slack": ["https://hooks.slack.com/x"]}}),
            "channel_data.slack",
        ),
        (json!([null, "+14155550100"]), "$"),
    ] {
        let body = assert_error(put_user(body).await.unwrap(), 422, "validation_failed").await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
    }
    let response = app
        .client
        .post(format!("{}/v1/notifications", app.address))
        .bearer_auth(&app.api_key)
        .json(&json!({"user_ids": ["u1"], "channels": ["sms"], "content": ["a body"]}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 422, "validation_failed").await;
    assert_eq!(body["error"]["details"][0]["field"], "content", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_a_non_json_body_a_415() {
    let app = spawn_app_with(|settings| settings.server.max_body_bytes = 4096).await;
    let mut body = notification(&["u1"]);
    body["content"]["body"] = json!("x".repeat(5000));
    let response = app.post_notification(&body).await;
    let error = assert_error(response, 413, "payload_too_large").await;
    assert_eq!(error["error"]["details"]["limit_bytes"], 4096);

    let response = app
        .client
        .post(format!("{}/v1/notifications", app.address))
        .bearer_auth(&app.api_key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn invalid_notifications_are_a_422_naming_each_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"user_ids": [], "channels": ["sms"], "content": {"body": "x"}}),
            "user_ids",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["fax"], "content": {"body": "x"}}),
            "channels[0]",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["email"], "content": {"body": "x"}}),
            "content.subject",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["sms"], "content": {"body": "{{nope}}"}}),
            "content.body",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["sms"], "content": {"body": "x"}, "priority": "asap"}),
            "priority",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["sms"], "content": {"body": "x"}, "scheduled_for": "soon"}),
            "scheduled_for",
        ),
        (
            json!({"user_ids": "u", "channels": ["sms"], "content": {"body": "x"}}),
            "user_ids",
        ),
        (
            json!({"user_ids": ["u"], "channels": ["sms"], "content": {"body": 5}}),
            "content.body",
        ),
        // Neither inline content nor a template.
        (json!({"user_ids": ["u"], "channels": ["sms"]}), "content"),
        (
            json!({"user_ids": ["u"], "channels": ["sms"], "content": {"body": "x"}, "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_notification(&body).await;
        let error = assert_error(response, 422, "validation_failed").await;
        let fields: Vec<&str> = error["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|detail| detail["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "expected {field} in {error} for {body}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn batches_that_are_empty_too_large_or_wholly_invalid_are_a_422() {
    let app = spawn_app().await;
    let response = app
        .post_json("/v1/notifications/batch", &json!({"notifications": []}))
        .await;
    assert_error(response, 422, "validation_failed").await;

    let items: Vec<Value> = (0..1001).map(|_| notification(&["u"])).collect();
    let response = app
        .post_json("/v1/notifications/batch", &json!({"notifications": items}))
        .await;
    let error = assert_error(response, 422, "validation_failed").await;
    assert!(error["error"]["details"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("1000"));

    let response = app
        .post_json(
            "/v1/notifications/batch",
            &json!({"notifications": [{"user_ids": []}]}),
        )
        .await;
    let error = assert_error(response, 422, "validation_failed").await;
    assert_eq!(error["error"]["details"][0]["index"], 0);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn bad_list_parameters_are_a_400() {
    let app = spawn_app().await;
    assert_error(
        app.get("/v1/notifications?limit=0").await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/v1/notifications?limit=abc").await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/v1/notifications?status=lost").await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/v1/notifications?cursor=zzz").await,
        400,
        "invalid_query",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_full_outbox_is_a_503_with_retry_after() {
    // The broker is unreachable, so nothing leaves the outbox; above the bound the API sheds load.
    let app = spawn_app_with(|settings| {
        settings.kafka.brokers = format!("127.0.0.1:{}", free_port());
        settings.outbox.max_unpublished = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app.post_notification(&notification(&["u1"])).await;
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            assert_eq!(response.headers().get("retry-after").unwrap(), "1");
            assert_error(response, 503, "overloaded").await;
        }
    }
    assert_eq!(statuses, vec![202, 202, 202, 503, 503]);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 3);
    app.stop().await;
}
