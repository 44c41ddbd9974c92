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
