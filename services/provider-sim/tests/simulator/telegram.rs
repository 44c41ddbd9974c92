//! The simulated Telegram Bot API: `sendMessage`'s success and error shapes, the chat knobs
//! (`-1`, `blocked`, `missing`), the bot token, and the flood-limit answer.

use serde_json::{json, Value};

use crate::helpers::{spawn_simulator, spawn_simulator_with, BOT_TOKEN};

fn send_message_path(token: &str) -> String {
    format!("/telegram/bot{token}/sendMessage")
}

async fn assert_telegram_error(response: reqwest::Response, status: u16, description: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": status, "description": description})
    );
}

#[tokio::test]
async fn a_sent_message_is_200_with_the_message_and_recorded_with_its_delivery_id() {
    let simulator = spawn_simulator().await;
    let before = chrono::Utc::now().timestamp();
    let response = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": 4242, "text": "Disk full"}),
            Some("telegram-1"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["ok"], true);
    let result = &answer["result"];
    let message_id = result["message_id"]
        .as_i64()
        .expect("an integer message_id");
    assert!(message_id > 0);
    assert_eq!(result["chat"]["id"], 4242);
    assert_eq!(result["chat"]["type"], "private");
    assert_eq!(result["text"], "Disk full");
    assert_eq!(result["from"]["id"], 123456, "the token's bot id");
    assert_eq!(result["from"]["is_bot"], true);
    let date = result["date"].as_i64().unwrap();
    assert!((before..=chrono::Utc::now().timestamp()).contains(&date));

    let message = simulator.received_one("telegram", "telegram-1").await;
    assert_eq!(message["provider"], "telegram");
    assert_eq!(message["recipient"], "4242");
    assert_eq!(message["body"], "Disk full");
    assert_eq!(message["provider_message_id"], message_id.to_string());

    let next: Value = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": "@herald_alerts", "text": "Again"}),
            Some("telegram-2"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(next["result"]["message_id"].as_i64().unwrap() > message_id);
    assert_eq!(next["result"]["chat"]["type"], "channel");
    assert_eq!(next["result"]["chat"]["username"], "herald_alerts");
    assert_eq!(
        simulator.received_one("telegram", "telegram-2").await["recipient"],
        "@herald_alerts"
    );
}

#[tokio::test]
async fn a_numeric_string_chat_id_and_a_case_insensitive_method_work_too() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(
            &format!("/telegram/bot{BOT_TOKEN}/SENDMESSAGE"),
            &json!({"chat_id": "-1001234567890", "text": "Supergroup"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["chat"]["id"], -1001234567890_i64);
    assert_eq!(answer["result"]["chat"]["type"], "supergroup");
}

#[tokio::test]
async fn a_wrong_token_is_401_and_an_unknown_method_404() {
    let simulator = spawn_simulator().await;
    let body = json!({"chat_id": 1, "text": "hi"});
    let wrong = simulator
        .post_json(&send_message_path("123456:someone-else"), &body, None)
        .await;
    assert_telegram_error(wrong, 401, "Unauthorized").await;
    let unknown = simulator
        .post_json(&format!("/telegram/bot{BOT_TOKEN}/sendPigeon"), &body, None)
        .await;
    assert_telegram_error(unknown, 404, "Not Found").await;
    let stats = simulator.stats().await;
    assert_eq!(stats["telegram"]["rejected"], 2);
}

#[tokio::test]
async fn the_configured_token_is_the_only_one_accepted() {
    let simulator = spawn_simulator_with(|config| {
        config.telegram.bot_token = secrecy::SecretString::from("42:another-bot");
    })
    .await;
    let body = json!({"chat_id": 1, "text": "hi"});
    let default_token = simulator
        .post_json(&send_message_path(BOT_TOKEN), &body, None)
        .await;
    assert_eq!(default_token.status(), 401);
    let configured = simulator
        .post_json(&send_message_path("42:another-bot"), &body, None)
        .await;
    assert_eq!(configured.status(), 200);
    let answer: Value = configured.json().await.unwrap();
    assert_eq!(answer["result"]["from"]["id"], 42);
}

#[tokio::test]
async fn text_over_4096_characters_is_400_message_is_too_long() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": 1, "text": "x".repeat(4097)}),
            Some("long"),
        )
        .await;
    assert_telegram_error(response, 400, "Bad Request: message is too long").await;
    let exactly = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": 1, "text": "é".repeat(4096)}),
            Some("exact"),
        )
        .await;
    assert_eq!(exactly.status(), 200);
}

#[tokio::test]
async fn a_blocked_bot_is_403_and_a_missing_chat_400() {
    let simulator = spawn_simulator().await;
    for chat_id in [json!(-1), json!("-1"), json!("blocked"), json!("@blocked")] {
        let response = simulator
            .post_json(
                &send_message_path(BOT_TOKEN),
                &json!({"chat_id": chat_id, "text": "hi"}),
                Some("blocked"),
            )
            .await;
        assert_telegram_error(response, 403, "Forbidden: bot was blocked by the user").await;
    }
    for chat_id in [json!("missing"), json!("@missing"), json!("nobody")] {
        let response = simulator
            .post_json(
                &send_message_path(BOT_TOKEN),
                &json!({"chat_id": chat_id, "text": "hi"}),
                Some("missing"),
            )
            .await;
        assert_telegram_error(response, 400, "Bad Request: chat not found").await;
    }
    let stats = simulator.stats().await;
    assert_eq!(stats["telegram"]["rejected"], 7);
    assert_eq!(stats["telegram"]["messages"], 0);
}

#[tokio::test]
async fn missing_parameters_are_400() {
    let simulator = spawn_simulator().await;
    for (body, description) in [
        (json!({"text": "hi"}), "Bad Request: chat_id is empty"),
        (json!({"chat_id": 1}), "Bad Request: message text is empty"),
    ] {
        let response = simulator
            .post_json(&send_message_path(BOT_TOKEN), &body, None)
            .await;
        assert_telegram_error(response, 400, description).await;
    }
}

#[tokio::test]
async fn a_flood_limit_is_429_with_the_configured_retry_after() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "telegram",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "5"}),
        )
        .await;
    let response = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": 1, "text": "hi"}),
            Some("d"),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "ok": false,
            "error_code": 429,
            "description": "Too Many Requests: retry after 5",
            "parameters": {"retry_after": 5}
        })
    );

    simulator
        .configure(
            "telegram",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 10}),
        )
        .await;
    let timed_out = simulator
        .post_json(
            &send_message_path(BOT_TOKEN),
            &json!({"chat_id": 1, "text": "hi"}),
            Some("d"),
        )
        .await;
    assert_telegram_error(timed_out, 504, "Gateway Timeout").await;

    let stats = simulator.stats().await;
    assert_eq!(stats["telegram"]["rate_limited"], 1);
    assert_eq!(stats["telegram"]["timeouts"], 1);
    assert_eq!(stats["telegram"]["messages"], 0);
}
