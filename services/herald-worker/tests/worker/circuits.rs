//! A provider's circuit breaker: it opens when the provider fails every call, the lane then
//! waits instead of calling (so the deliveries keep their attempts and the provider gets only
//! probes), `/readyz` shows the circuit without turning unready, and once the provider recovers
//! the circuit closes and everything is delivered, once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use herald_testing::eventually;

async fn readiness(metrics_port: u16) -> (u16, Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{metrics_port}/readyz"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn an_open_circuit_waits_out_a_failing_provider_and_closes_when_it_recovers() {
    let stack = start_stack(None).await;
    let metrics_port = free_port();
    let _worker = worker_process_with(
        &stack.settings,
        metrics_port,
        &[
            (
                "HERALD_PROVIDERS__CIRCUIT_BREAKER__CONSECUTIVE_FAILURES",
                "3".into(),
            ),
            (
                "HERALD_PROVIDERS__CIRCUIT_BREAKER__OPEN_FOR_MS",
                "1000".into(),
            ),
            // No failover: this is the lane that waits the outage out.
            ("HERALD_SMTP_URL", String::new()),
            (
                "HERALD_PROVIDERS__CIRCUIT_BREAKER__MAX_OPEN_FOR_MS",
                "2000".into(),
            ),
        ],
    );
    wait_until_ready(metrics_port).await;
    stack
        .configure_provider("sendgrid", json!({"failure_rate": 1.0}))
        .await;
    stack
        .put_user(
            "u1",
            json!({"email": "ops@example.com", "phone": "+14155550100"}),
        )
        .await;

    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(stack.notify(alert(&["u1"], &["email"])).await);
    }
    let opened = eventually(Duration::from_secs(20), || async {
        let (status, body) = readiness(metrics_port).await;
        status == 200 && body["circuits"]["sendgrid"] != "closed"
    })
    .await;
    assert!(opened, "the circuit opens and the worker stays ready");
    let (_, body) = readiness(metrics_port).await;
    assert_eq!(body["circuits"]["twilio"], "closed", "{body}");
    // Open, the lane calls only probes (one at a time, a second or two apart): without the
    // breaker the ten failed deliveries would each be retried within a second (retry_base_ms 200).
    let sendgrid_requests = || async {
        stack.simulator_stats().await["sendgrid"]["requests"]
            .as_u64()
            .unwrap()
    };
    let at_opening = sendgrid_requests().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_open = sendgrid_requests().await - at_opening;
    assert!(
        while_open <= 3,
        "{while_open} requests reached a provider whose circuit is open (probes only expected)"
    );
    let metrics = worker_metrics(metrics_port).await;
    assert!(
        metrics.contains("herald_provider_circuit_state{provider=\"sendgrid\",state=\"closed\"} 0"),
        "the gauge shows the circuit is not closed"
    );

    stack
        .configure_provider("sendgrid", json!({"failure_rate": 0.0}))
        .await;
    for id in &ids {
        let view = stack.wait_until_final(id, Duration::from_secs(60)).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }
    let closed = eventually(Duration::from_secs(10), || async {
        readiness(metrics_port).await.1["circuits"]["sendgrid"] == "closed"
    })
    .await;
    assert!(closed, "the circuit closes once the provider answers again");
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["sendgrid"]["duplicates"], 0, "{stats}");
    assert_eq!(stats["sendgrid"]["distinct_references"], 10, "{stats}");
}

fn providers_of(view: &Value) -> Vec<String> {
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["provider"].as_str().unwrap().to_owned())
        .collect()
}

/// SendGrid fails every request: its circuit opens and every email goes out through SMTP
/// instead, recorded as sent by `smtp`; once SendGrid answers again a probe closes the circuit
/// and email goes through SendGrid again. Nothing is lost and nothing is sent twice.
#[tokio::test]
async fn email_fails_over_to_smtp_while_sendgrid_is_down_and_returns_when_it_recovers() {
    let stack = start_stack(None).await;
    let mut settings = stack.settings.clone();
    settings.providers.circuit_breaker.consecutive_failures = 3;
    settings.providers.circuit_breaker.open_for_ms = 1000;
    settings.providers.circuit_breaker.max_open_for_ms = 2000;
    let (stop_worker, worker) = start_worker(&settings).await;
    stack
        .configure_provider("sendgrid", json!({"failure_rate": 1.0}))
        .await;
    stack
        .put_user("u1", json!({"email": "ops@example.com"}))
        .await;

    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(stack.notify(alert(&["u1"], &["email"])).await);
    }
    let mut sent_by = Vec::new();
    for id in &ids {
        let view = stack.wait_until_final(id, Duration::from_secs(60)).await;
        assert_eq!(view["status"], "delivered", "{view}");
        sent_by.extend(providers_of(&view));
    }
    assert!(
        sent_by.iter().all(|provider| provider == "smtp"),
        "{sent_by:?}"
    );
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["sendgrid"]["accepted"], 0, "{stats}");
    assert_eq!(stats["smtp"]["distinct_references"], 20, "{stats}");
    assert_eq!(stats["smtp"]["duplicates"], 0, "{stats}");
    let received = stack.received("smtp").await;
    let email = &received["messages"][0];
    assert_eq!(email["recipient"], "ops@example.com");
    assert_eq!(email["subject"], "Pressure alert");
    assert_eq!(email["body"], "Pressure 7 on press-4");

    stack
        .configure_provider("sendgrid", json!({"failure_rate": 0.0}))
        .await;
    // Past the open time the next email is SendGrid's probe; its success closes the circuit.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut after_recovery = Vec::new();
    for _ in 0..5 {
        let id = stack.notify(alert(&["u1"], &["email"])).await;
        let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
        assert_eq!(view["status"], "delivered", "{view}");
        after_recovery.extend(providers_of(&view));
    }
    assert!(
        after_recovery.iter().all(|provider| provider == "sendgrid"),
        "{after_recovery:?}"
    );
    assert_eq!(stack.simulator_stats().await["sendgrid"]["duplicates"], 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
