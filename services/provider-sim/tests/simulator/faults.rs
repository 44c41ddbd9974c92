//! Simulated behaviour: one-shot faults, rates, latency and timeouts, changed at run time.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{mail_with_reference, sms_form, spawn_simulator, spawn_simulator_with};

#[tokio::test]
async fn fail_next_two_server_errors_fails_exactly_the_next_two_requests() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "sendgrid",
            json!({"fail_next": 2, "fail_next_kind": "server_error"}),
        )
        .await;

    let mut statuses = Vec::new();
    for attempt in 0..3 {
        let response = simulator
            .send_mail(&mail_with_reference(&format!("d-{attempt}")))
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 500 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body,
                json!({"errors": [{"message": "Internal server error", "field": null, "help": null}]})
            );
        }
    }

    assert_eq!(statuses, [500, 500, 202]);
    let stats = simulator.stats().await;
    assert_eq!(stats["sendgrid"]["server_errors"], 2);
    assert_eq!(stats["sendgrid"]["accepted"], 1);
    let references = simulator
        .get_json("/_sim/references?provider=sendgrid")
        .await;
    assert_eq!(references, json!({"counts": {"d-2": 1}}));
    let config = simulator.get_json("/_sim/config").await;
    assert_eq!(config["sendgrid"]["fail_next"], 0);
}

#[tokio::test]
async fn invalid_and_unauthenticated_requests_do_not_consume_one_shot_faults() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "twilio",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;

    let unauthenticated = simulator
        .client
        .post(simulator.messages_url("AC00000000000000000000000000000000"))
        .form(&sms_form("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let invalid = simulator.send_sms(&sms_form(""), None).await;
    assert_eq!(invalid.status(), 400);

    let faulted = simulator.send_sms(&sms_form("hi"), None).await;
    assert_eq!(faulted.status(), 500);
    let body: Value = faulted.json().await.unwrap();
    assert_eq!(body["code"], 20500);
    assert_eq!(body["message"], "Internal Server Error");
    assert_eq!(body["status"], 500);
    assert_eq!(
        simulator.send_sms(&sms_form("hi"), None).await.status(),
        201
    );
}

#[tokio::test]
async fn a_rate_limit_fault_is_429_with_retry_after() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "sendgrid",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit"}),
        )
        .await;
    simulator
        .configure(
            "twilio",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit"}),
        )
        .await;

    let mail = simulator.send_mail(&mail_with_reference("d")).await;
    assert_eq!(mail.status(), 429);
    assert_eq!(mail.headers()["Retry-After"], "1");
    assert_eq!(
        mail.json::<Value>().await.unwrap(),
        json!({"errors": [{"message": "too many requests", "field": null, "help": null}]})
    );

    let sms = simulator.send_sms(&sms_form("hi"), None).await;
    assert_eq!(sms.status(), 429);
    assert_eq!(sms.headers()["Retry-After"], "1");
    let body: Value = sms.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(body["message"], "Too Many Requests");

    let stats = simulator.stats().await;
    assert_eq!(stats["sendgrid"]["rate_limited"], 1);
    assert_eq!(stats["twilio"]["rate_limited"], 1);
}

#[tokio::test]
async fn a_timeout_fault_holds_the_request_then_answers_504() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "twilio",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 300}),
        )
        .await;

    let started = Instant::now();
    let response = simulator.send_sms(&sms_form("hi"), Some("d-1")).await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 504);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(response.json::<Value>().await.unwrap()["code"].is_number());
    let stats = simulator.stats().await;
    assert_eq!(stats["twilio"]["timeouts"], 1);
    assert_eq!(stats["twilio"]["accepted"], 0);
}

#[tokio::test]
async fn latency_delays_every_answer_without_blocking_others() {
    let simulator = spawn_simulator().await;
    simulator
        .configure("sendgrid", json!({"latency_ms": 200}))
        .await;

    let started = Instant::now();
    let response = simulator.send_mail(&mail_with_reference("d-1")).await;
    assert_eq!(response.status(), 202);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // One worker thread answers ten slow requests together: the wait is a timer, not a block.
    let started = Instant::now();
    let requests = (0..10).map(|number| {
        let body = mail_with_reference(&format!("parallel-{number}"));
        let simulator = &simulator;
        async move { simulator.send_mail(&body).await.status() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|status| *status == 202));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Twilio has its own behaviour: still fast.
    let started = Instant::now();
    assert_eq!(
        simulator.send_sms(&sms_form("hi"), None).await.status(),
        201
    );
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn a_failure_rate_of_one_fails_every_valid_request() {
    let simulator = spawn_simulator_with(|config| {
        config.twilio.behaviour.failure_rate = 1.0;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            simulator.send_sms(&sms_form("hi"), None).await.status(),
            500
        );
    }
    assert_eq!(simulator.stats().await["twilio"]["server_errors"], 5);
}
