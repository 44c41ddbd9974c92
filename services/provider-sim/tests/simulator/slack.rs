//! The simulated Slack incoming webhooks: plain-text `ok` and error codes, the broken-webhook
//! knobs, faults, and the delivery id recorded from `X-Herald-Delivery-Id`.

use serde_json::{json, Value};

use crate::helpers::{spawn_simulator, TestSimulator};

const WEBHOOK: &str = "/slack/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX";

/// The body Herald's worker posts: text as the fallback, a header and a section block.
fn herald_message() -> Value {
    json!({
        "text": "Pressure alert\n\nPressure 7 on press-4",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Pressure alert"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "Pressure 7 on press-4"}}
        ]
    })
}

async fn assert_plain(response: reqwest::Response, status: u16, body: &str) {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(response.text().await.unwrap(), body);
}

async fn post_raw(simulator: &TestSimulator, path: &str, body: &'static str) -> reqwest::Response {
    simulator
        .client
        .post(simulator.url(path))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_posted_message_is_200_ok_and_recorded_with_its_delivery_id() {
    let simulator = spawn_simulator().await;

    let response = simulator
        .post_json(WEBHOOK, &herald_message(), Some("slack-1"))
        .await;
    assert_plain(response, 200, "ok").await;

    let message = simulator.received_one("slack", "slack-1").await;
    assert_eq!(message["provider"], "slack");
    assert_eq!(message["recipient"], "T0001/B0001", "never the secret");
    assert_eq!(message["body"], "Pressure alert\n\nPressure 7 on press-4");
    assert_eq!(message["subject"], Value::Null);
    assert_eq!(message["provider_message_id"], Value::Null);

    let blocks_only = json!({"blocks": [{"type": "divider"}]});
    let response = simulator
        .post_json(WEBHOOK, &blocks_only, Some("slack-2"))
        .await;
    assert_plain(response, 200, "ok").await;
    let message = simulator.received_one("slack", "slack-2").await;
    assert_eq!(message["body"], r#"[{"type":"divider"}]"#);

    assert_eq!(
        simulator.get_json("/_sim/references?provider=slack").await,
        json!({"counts": {"slack-1": 1, "slack-2": 1}})
    );
    let stats = simulator.stats().await;
    assert_eq!(stats["slack"]["accepted"], 2);
    assert_eq!(stats["slack"]["messages"], 2);
}

#[tokio::test]
async fn bad_payloads_are_400_with_slacks_error_codes() {
    let simulator = spawn_simulator().await;
    assert_plain(
        post_raw(&simulator, WEBHOOK, "text=hi").await,
        400,
        "invalid_payload",
    )
    .await;
    assert_plain(
        post_raw(&simulator, WEBHOOK, r#"{"text": 5}"#).await,
        400,
        "invalid_payload",
    )
    .await;
    assert_plain(post_raw(&simulator, WEBHOOK, "{}").await, 400, "no_text").await;
    assert_plain(
        post_raw(&simulator, WEBHOOK, r#"{"text": "", "blocks": []}"#).await,
        400,
        "no_text",
    )
    .await;
    assert_plain(
        post_raw(
            &simulator,
            WEBHOOK,
            r#"{"text": "x", "blocks": [{"no": "type"}]}"#,
        )
        .await,
        400,
        "invalid_blocks",
    )
    .await;
    let stats = simulator.stats().await;
    assert_eq!(stats["slack"]["rejected"], 5);
    assert_eq!(stats["slack"]["requests"], 5);
    assert_eq!(stats["slack"]["messages"], 0);
}

#[tokio::test]
async fn special_secrets_are_a_revoked_a_prohibited_and_an_archived_webhook() {
    let simulator = spawn_simulator().await;
    // A revoked webhook is answered before its payload is looked at.
    assert_plain(
        post_raw(&simulator, "/slack/services/T1/B1/invalid", "{}").await,
        404,
        "no_service",
    )
    .await;
    let prohibited = simulator
        .post_json(
            "/slack/services/T1/B1/prohibited",
            &herald_message(),
            Some("p"),
        )
        .await;
    assert_plain(prohibited, 403, "action_prohibited").await;
    let archived = simulator
        .post_json(
            "/slack/services/T1/B1/archived",
            &herald_message(),
            Some("a"),
        )
        .await;
    assert_plain(archived, 410, "channel_is_archived").await;

    let stats = simulator.stats().await;
    assert_eq!(stats["slack"]["rejected"], 3);
    assert_eq!(stats["slack"]["accepted"], 0);
    assert_eq!(
        simulator.get_json("/_sim/references?provider=slack").await,
        json!({"counts": {}})
    );
}

#[tokio::test]
async fn a_rate_limit_is_429_with_retry_after_in_seconds_and_faults_are_plain_text() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "slack",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "30"}),
        )
        .await;
    let limited = simulator
        .post_json(WEBHOOK, &herald_message(), Some("d"))
        .await;
    assert_eq!(limited.headers()["retry-after"], "30");
    assert_plain(limited, 429, "rate_limited").await;

    simulator
        .configure(
            "slack",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let failed = simulator
        .post_json(WEBHOOK, &herald_message(), Some("d"))
        .await;
    assert_plain(failed, 500, "rollup_error").await;

    simulator
        .configure(
            "slack",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 10}),
        )
        .await;
    let timed_out = simulator
        .post_json(WEBHOOK, &herald_message(), Some("d"))
        .await;
    assert_eq!(timed_out.status(), 504);

    let accepted = simulator
        .post_json(WEBHOOK, &herald_message(), Some("d"))
        .await;
    assert_plain(accepted, 200, "ok").await;
    let stats = simulator.stats().await;
    assert_eq!(stats["slack"]["rate_limited"], 1);
    assert_eq!(stats["slack"]["server_errors"], 1);
    assert_eq!(stats["slack"]["timeouts"], 1);
    assert_eq!(stats["slack"]["accepted"], 1);
    assert_eq!(
        simulator.get_json("/_sim/references?provider=slack").await,
        json!({"counts": {"d": 1}}),
        "faulted attempts deliver nothing"
    );
}

#[tokio::test]
async fn other_methods_are_405() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .client
        .get(simulator.url(WEBHOOK))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}
