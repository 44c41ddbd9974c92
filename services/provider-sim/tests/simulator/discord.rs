//! The simulated Discord webhooks: 204 or (with `?wait=true`) 200 and the created message,
//! Discord's error codes, the unknown-webhook knob and the rate-limit answer.

use serde_json::{json, Value};

use crate::helpers::{spawn_simulator, TestSimulator};

const WEBHOOK: &str = "/discord/api/webhooks/1187472135431069716/herald-token";

/// The body Herald's worker posts.
fn herald_message(content: &str) -> Value {
    json!({"content": content, "allowed_mentions": {"parse": []}})
}

fn is_snowflake(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|id| !id.is_empty() && id.parse::<u64>().is_ok())
}

async fn assert_discord_error(response: reqwest::Response, status: u16, expected: Value) {
    assert_eq!(response.status(), status);
    assert_eq!(response.json::<Value>().await.unwrap(), expected);
}

async fn post_raw(simulator: &TestSimulator, body: &'static str) -> reqwest::Response {
    simulator
        .client
        .post(simulator.url(WEBHOOK))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_wait_a_message_is_204_and_recorded_with_its_delivery_id() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(WEBHOOK, &herald_message("Disk full"), Some("discord-1"))
        .await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    let message = simulator.received_one("discord", "discord-1").await;
    assert_eq!(message["provider"], "discord");
    assert_eq!(message["recipient"], "1187472135431069716");
    assert_eq!(message["body"], "Disk full");
    assert!(is_snowflake(&message["provider_message_id"]), "{message}");
}

#[tokio::test]
async fn with_wait_true_the_answer_is_200_and_the_created_message() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(
            &format!("{WEBHOOK}?wait=true"),
            &herald_message("Disk full"),
            Some("discord-2"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert!(is_snowflake(&created["id"]), "{created}");
    assert!(is_snowflake(&created["channel_id"]), "{created}");
    assert_eq!(created["content"], "Disk full");
    assert_eq!(created["webhook_id"], "1187472135431069716");
    assert_eq!(created["type"], 0);
    assert_eq!(created["embeds"], json!([]));
    let timestamp = created["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );

    let message = simulator.received_one("discord", "discord-2").await;
    assert_eq!(message["provider_message_id"], created["id"]);

    let again = simulator
        .post_json(
            &format!("{WEBHOOK}?wait=true"),
            &herald_message("Disk full"),
            Some("discord-3"),
        )
        .await;
    let second: Value = again.json().await.unwrap();
    assert_ne!(second["id"], created["id"]);
    assert_eq!(
        second["channel_id"], created["channel_id"],
        "one channel per webhook"
    );
}

#[tokio::test]
async fn content_over_2000_characters_is_invalid_form_body_50035() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(WEBHOOK, &herald_message(&"é".repeat(2001)), Some("long"))
        .await;
    assert_discord_error(
        response,
        400,
        json!({
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {"content": {"_errors": [{
                "code": "BASE_TYPE_MAX_LENGTH",
                "message": "Must be 2000 or fewer in length."
            }]}}
        }),
    )
    .await;
    let exactly = simulator
        .post_json(WEBHOOK, &herald_message(&"é".repeat(2000)), Some("exact"))
        .await;
    assert_eq!(exactly.status(), 204);
}

#[tokio::test]
async fn empty_messages_bad_json_and_bad_wait_values_are_400_with_discords_codes() {
    let simulator = spawn_simulator().await;
    assert_discord_error(
        post_raw(&simulator, "{}").await,
        400,
        json!({"message": "Cannot send an empty message", "code": 50006}),
    )
    .await;
    assert_discord_error(
        post_raw(&simulator, "{\"content\": ").await,
        400,
        json!({"message": "The request body contains invalid JSON.", "code": 50109}),
    )
    .await;
    // Embeds are not modelled (Herald sends none): without `content` a message is empty.
    assert_discord_error(
        simulator
            .post_json(WEBHOOK, &json!({"embeds": [{"title": "Disk full"}]}), None)
            .await,
        400,
        json!({"message": "Cannot send an empty message", "code": 50006}),
    )
    .await;
    let bad_wait = simulator
        .post_json(&format!("{WEBHOOK}?wait=maybe"), &herald_message("x"), None)
        .await;
    assert_eq!(bad_wait.status(), 400);
    let body: Value = bad_wait.json().await.unwrap();
    assert_eq!(body["code"], 50035);
    assert_eq!(
        body["errors"]["wait"]["_errors"][0]["code"],
        "BOOLEAN_TYPE_CONVERT"
    );
    let stats = simulator.stats().await;
    assert_eq!(stats["discord"]["rejected"], 4);
    assert_eq!(stats["discord"]["accepted"], 0);
}

#[tokio::test]
async fn the_invalid_token_and_a_non_numeric_id_are_an_unknown_webhook() {
    let simulator = spawn_simulator().await;
    let expected = json!({"message": "Unknown Webhook", "code": 10015});
    for path in [
        "/discord/api/webhooks/1187472135431069716/invalid",
        "/discord/api/webhooks/not-a-snowflake/herald-token",
    ] {
        let response = simulator
            .post_json(path, &herald_message("x"), Some("d"))
            .await;
        assert_discord_error(response, 404, expected.clone()).await;
    }
    assert_eq!(simulator.stats().await["discord"]["rejected"], 2);
}

#[tokio::test]
async fn a_rate_limit_is_429_with_retry_after_in_the_body_and_headers() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "discord",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "1.5"}),
        )
        .await;
    let response = simulator
        .post_json(
            &format!("{WEBHOOK}?wait=true"),
            &herald_message("x"),
            Some("d"),
        )
        .await;
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    assert_eq!(headers["retry-after"], "1.5");
    assert_eq!(headers["x-ratelimit-limit"], "5");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["x-ratelimit-reset-after"], "1.500");
    assert!(headers.contains_key("x-ratelimit-reset"));
    assert!(headers.contains_key("x-ratelimit-bucket"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
    );

    simulator
        .configure(
            "discord",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let failed = simulator
        .post_json(WEBHOOK, &herald_message("x"), Some("d"))
        .await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.json::<Value>().await.unwrap()["code"], 0);

    let stats = simulator.stats().await;
    assert_eq!(stats["discord"]["rate_limited"], 1);
    assert_eq!(stats["discord"]["server_errors"], 1);
    assert_eq!(stats["discord"]["messages"], 0);
}
