//! `GET /_sim/config` and `PUT /_sim/config/{provider}`.

use serde_json::{json, Value};

use crate::helpers::{spawn_simulator, spawn_simulator_with};

#[tokio::test]
async fn config_shows_both_behaviours_with_their_defaults() {
    let simulator = spawn_simulator_with(|config| config.twilio.behaviour.latency_ms = 7).await;
    let config = simulator.get_json("/_sim/config").await;
    assert_eq!(
        config["sendgrid"],
        json!({
            "latency_ms": 0, "latency_jitter_ms": 0, "failure_rate": 0.0,
            "rate_limit_rate": 0.0, "timeout_rate": 0.0, "timeout_hold_ms": 30000,
            "fail_next": 0, "fail_next_kind": "server_error", "honour_idempotency_reference": false,
            "retry_after": "1"
        })
    );
    assert_eq!(config["twilio"]["latency_ms"], 7);
}

#[tokio::test]
async fn put_replaces_one_behaviour_and_missing_fields_take_defaults() {
    let simulator = spawn_simulator_with(|config| config.sendgrid.behaviour.latency_ms = 50).await;
    let response = simulator
        .set_behaviour("sendgrid", json!({"failure_rate": 0.25}))
        .await;
    assert_eq!(response.status(), 200);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["failure_rate"], 0.25);
    assert_eq!(answered["latency_ms"], 0);

    let config = simulator.get_json("/_sim/config").await;
    assert_eq!(config["sendgrid"], answered);
    assert_eq!(config["twilio"]["failure_rate"], 0.0);
}

#[tokio::test]
async fn invalid_behaviours_are_refused_with_json_errors() {
    let simulator = spawn_simulator().await;
    for behaviour in [
        json!({"failure_rate": 1.5}),
        json!({"rate_limit_rate": -0.1}),
        json!({"failure_rate": 0.6, "timeout_rate": 0.6}),
        json!({"fail_next_kind": "explode"}),
        json!({"latency": 5}),
        json!({"latency_ms": -1}),
    ] {
        let response = simulator.set_behaviour("twilio", behaviour.clone()).await;
        assert_eq!(response.status(), 400, "{behaviour}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{behaviour}: {body}");
    }
    let unknown = simulator
        .set_behaviour("mailgun", json!({"latency_ms": 1}))
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().await.unwrap()["error"].is_string());

    let config = simulator.get_json("/_sim/config").await;
    assert_eq!(config["twilio"]["failure_rate"], 0.0);
}
