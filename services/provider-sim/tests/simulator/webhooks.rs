//! The Standard Webhooks receiver: endpoint registration, signatures made here the way the
//! specification describes (independently of the simulator's own code) accepted, and every
//! unsigned, mis-signed, stale or unregistered request refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_simulator, TestSimulator};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// Odd spacing on purpose: a receiver that re-serialized before verifying would break it.
const EVENT: &str = r#"{"type": "notification.message",  "data": {"body": "Disk full"}}"#;

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the base64 after `whsec_`.
fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` to `/webhooks/{endpoint}` with the given Standard Webhooks headers.
async fn deliver(
    simulator: &TestSimulator,
    endpoint: &str,
    headers: &[(&str, String)],
    body: &'static str,
) -> reqwest::Response {
    let mut request = simulator
        .client
        .post(simulator.url(&format!("/webhooks/{endpoint}")))
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

fn signed_headers(id: &str, timestamp: i64, signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

async fn assert_refused(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().expect("a JSON error").to_owned()
}

#[test]
fn the_test_signer_reproduces_the_specifications_vector() {
    // standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts.
    assert_eq!(
        sign(
            SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[tokio::test]
async fn endpoints_are_registered_and_rotated_and_bad_secrets_refused() {
    let simulator = spawn_simulator().await;
    let register = |endpoint: &'static str, body: Value| {
        let request = simulator
            .client
            .put(simulator.url(&format!("/_sim/webhook-endpoints/{endpoint}")))
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let created = register("orders", json!({"secret": SECRET})).await;
    assert_eq!(created.status(), 200);
    assert_eq!(
        created.json::<Value>().await.unwrap(),
        json!({"endpoint": "orders", "path": "/webhooks/orders", "replaced": false})
    );
    let rotated = register("orders", json!({"secret": OTHER_SECRET})).await;
    assert_eq!(rotated.json::<Value>().await.unwrap()["replaced"], true);

    for body in [
        json!({"secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        json!({"secret": "whsec_not base64!"}),
        json!({"secret": "whsec_"}),
        json!({"key": SECRET}),
        json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ] {
        let response = register("orders", body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    }
    let bad_name = register("a%20b", json!({"secret": SECRET})).await;
    assert_eq!(bad_name.status(), 400);
}

#[tokio::test]
async fn a_correctly_signed_event_is_200_and_recorded_by_its_webhook_id() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    let id = "0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f90";
    let timestamp = now();
    let response = deliver(
        &simulator,
        "orders",
        &signed_headers(id, timestamp, sign(SECRET, id, timestamp, EVENT)),
        EVENT,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"received": true})
    );

    let message = simulator.received_one("webhook", id).await;
    assert_eq!(message["provider"], "webhook");
    assert_eq!(message["recipient"], "orders");
    assert_eq!(message["body"], EVENT, "the raw body, byte for byte");
    assert_eq!(message["provider_message_id"], Value::Null);
    assert_eq!(
        simulator
            .get_json("/_sim/references?provider=webhook")
            .await,
        json!({"counts": {id: 1}})
    );
}

#[tokio::test]
async fn one_valid_signature_among_several_is_enough() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    let timestamp = now();
    let signatures = format!(
        "{} {}",
        sign(OTHER_SECRET, "msg_1", timestamp, EVENT),
        sign(SECRET, "msg_1", timestamp, EVENT)
    );
    let response = deliver(
        &simulator,
        "orders",
        &signed_headers("msg_1", timestamp, signatures),
        EVENT,
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unsigned_mis_signed_stale_and_unregistered_requests_are_refused() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    let timestamp = now();
    let good = sign(SECRET, "msg_1", timestamp, EVENT);

    let unregistered = deliver(
        &simulator,
        "nobody",
        &signed_headers("msg_1", timestamp, good.clone()),
        EVENT,
    )
    .await;
    assert_refused(unregistered, 404).await;

    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let headers: Vec<_> = signed_headers("msg_1", timestamp, good.clone())
            .into_iter()
            .filter(|(name, _)| *name != missing)
            .collect();
        let error = assert_refused(deliver(&simulator, "orders", &headers, EVENT).await, 401).await;
        assert!(error.contains(missing), "{error}");
    }

    let wrong_key = sign(OTHER_SECRET, "msg_1", timestamp, EVENT);
    let wrong_id = sign(SECRET, "msg_2", timestamp, EVENT);
    let other_body = sign(SECRET, "msg_1", timestamp, r#"{"type": "other"}"#);
    for signature in [
        wrong_key,
        wrong_id,
        other_body,
        "v1,".to_owned(),
        "garbage".to_owned(),
    ] {
        let response = deliver(
            &simulator,
            "orders",
            &signed_headers("msg_1", timestamp, signature),
            EVENT,
        )
        .await;
        assert_refused(response, 401).await;
    }

    // Correctly signed, but more than five minutes old or ahead: a replay or a wrong clock.
    for stale in [timestamp - 6 * 60, timestamp + 6 * 60] {
        let response = deliver(
            &simulator,
            "orders",
            &signed_headers("msg_1", stale, sign(SECRET, "msg_1", stale, EVENT)),
            EVENT,
        )
        .await;
        let error = assert_refused(response, 401).await;
        assert!(error.contains("5 minutes"), "{error}");
    }

    let stats = simulator.stats().await;
    assert_eq!(stats["webhook"]["rejected"], 1 + 3 + 5 + 2);
    assert_eq!(stats["webhook"]["accepted"], 0);
    assert_eq!(stats["webhook"]["messages"], 0);
}

#[tokio::test]
async fn a_rotated_secret_no_longer_verifies_old_signatures() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    simulator
        .register_webhook_endpoint("orders", OTHER_SECRET)
        .await;
    let timestamp = now();
    let old = deliver(
        &simulator,
        "orders",
        &signed_headers("msg_1", timestamp, sign(SECRET, "msg_1", timestamp, EVENT)),
        EVENT,
    )
    .await;
    assert_eq!(old.status(), 401);
    let new = deliver(
        &simulator,
        "orders",
        &signed_headers(
            "msg_1",
            timestamp,
            sign(OTHER_SECRET, "msg_1", timestamp, EVENT),
        ),
        EVENT,
    )
    .await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_400() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    let timestamp = now();
    let response = deliver(
        &simulator,
        "orders",
        &signed_headers(
            "msg_1",
            timestamp,
            sign(SECRET, "msg_1", timestamp, "not json"),
        ),
        "not json",
    )
    .await;
    assert_refused(response, 400).await;
}

#[tokio::test]
async fn faults_apply_to_verified_events_only() {
    let simulator = spawn_simulator().await;
    simulator.register_webhook_endpoint("orders", SECRET).await;
    simulator
        .configure(
            "webhook",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "7"}),
        )
        .await;
    let timestamp = now();
    let unsigned = deliver(
        &simulator,
        "orders",
        &signed_headers("msg_1", timestamp, "v1,".to_owned()),
        EVENT,
    )
    .await;
    assert_eq!(
        unsigned.status(),
        401,
        "a refusal does not use up the fault"
    );
    let signed = signed_headers("msg_1", timestamp, sign(SECRET, "msg_1", timestamp, EVENT));
    let limited = deliver(&simulator, "orders", &signed, EVENT).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let retried = deliver(&simulator, "orders", &signed, EVENT).await;
    assert_eq!(retried.status(), 200);
    let stats = simulator.stats().await;
    assert_eq!(stats["webhook"]["rate_limited"], 1);
    assert_eq!(stats["webhook"]["accepted"], 1);
}
