//! A hostile tenant cannot stop, slow or duplicate another tenant's deliveries (issue 14). The
//! API-side holes are tested in `herald-api/tests/api/hostile.rs`.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// A placeholder bomb accepted before the ingest bound existed (written here straight into the
/// row): the worker measures what it would render, refuses it without a call, and stays up for
/// everyone else.
#[tokio::test]
async fn content_that_renders_beyond_the_bound_fails_without_a_call_and_the_worker_stays_up() {
    let stack = start_stack(None).await;
    stack.insert_users(2).await;
    let bomb = stack.notify(alert(&["user-0"], &["sms"])).await;
    execute(
        &stack.database,
        &format!(
            "UPDATE notifications SET body = repeat('{{{{a}}}}', 13107), \
             data = jsonb_build_object('a', repeat('x', 65000)) WHERE id = '{bomb}'"
        ),
    )
    .await;
    let healthy = stack.notify(alert(&["user-1"], &["sms"])).await;

    let metrics_port = free_port();
    let mut worker = worker_process(&stack.settings, metrics_port);
    let bombed = stack.wait_until_final(&bomb, Duration::from_secs(60)).await;
    let delivered = stack
        .wait_until_final(&healthy, Duration::from_secs(60))
        .await;

    assert_eq!(bombed["status"], "failed", "{bombed}");
    let error = bombed["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("renders to 851955000 bytes"), "{bombed}");
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let received = stack.received("twilio").await;
    assert_eq!(
        received["messages"].as_array().unwrap().len(),
        1,
        "only the healthy one: {received}"
    );
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
}

/// A delivery whose sender keeps dying (here: killed while its call is in flight, as an OOM kill
/// would) is taken over three times, then failed without a fourth call, never retried for ever.
#[tokio::test]
async fn a_delivery_whose_worker_keeps_dying_is_given_up_after_three_takeovers() {
    let stack = start_stack(None).await;
    stack.insert_users(1).await;
    // Long enough to kill the worker mid-call, short of the provider timeout (1 s in tests).
    stack
        .configure_provider("twilio", json!({"latency_ms": 700}))
        .await;
    let id = stack.notify(alert(&["user-0"], &["sms"])).await;

    for takeovers_so_far in 0..3 {
        let mut worker = worker_process(&stack.settings, free_port());
        stack
            .wait_for_count(
                &format!(
                    "SELECT count(*) FROM deliveries WHERE status = 'sending' \
                     AND attempts = {}",
                    takeovers_so_far + 1
                ),
                1,
                Duration::from_secs(60),
            )
            .await;
        worker.kill().await.unwrap();
        worker.wait().await.unwrap();
    }

    let metrics_port = free_port();
    let _survivor = worker_process(&stack.settings, metrics_port);
    let notification = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(notification["status"], "failed", "{notification}");
    let delivery = &notification["deliveries"][0];
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped 3 times before recording an outcome"),
        "{notification}"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'")
            .await,
        3
    );
    let calls = stack.simulator_stats().await["twilio"]["messages"]
        .as_u64()
        .unwrap_or(0);
    assert!(calls <= 3, "no call after the third takeover: {calls}");
    assert_eq!(
        stack.count("SELECT count(*) FROM dead_letters").await,
        1,
        "given up is a dead letter, replayable"
    );
    let metrics = worker_metrics(metrics_port).await;
    assert!(
        metrics.contains("herald_deliveries_given_up_after_takeovers_total{provider=\"twilio\"} 1"),
        "{metrics}"
    );
}

/// An endpoint that accepts connections and never answers; counts the connections it holds.
struct Tarpit {
    url: String,
    holding: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most_held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn start_tarpit() -> Tarpit {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let holding = Arc::new(AtomicUsize::new(0));
    let most_held = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (holding_in, most_in, accepted_in) = (holding.clone(), most_held.clone(), accepted.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut connection, _)) = listener.accept().await else {
                return;
            };
            accepted_in.fetch_add(1, Ordering::SeqCst);
            let now = holding_in.fetch_add(1, Ordering::SeqCst) + 1;
            most_in.fetch_max(now, Ordering::SeqCst);
            let holding = holding_in.clone();
            tokio::spawn(async move {
                // Read the request and never answer, until the client gives up.
                let mut buffer = [0u8; 4096];
                while matches!(connection.read(&mut buffer).await, Ok(read) if read > 0) {}
                holding.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Tarpit {
        url,
        holding,
        most_held,
        accepted,
    }
}

/// Tenant A's webhook endpoint is a tarpit (it takes every request and never answers) and A sends
/// it hundreds of notifications; tenant B's webhook, on the same lane, is still delivered within a
/// second each time. A's endpoint never holds more than its share of the lane's calls, and its
/// failures open its own circuit only: B's calls and the lane's circuit are untouched.
#[tokio::test]
async fn a_tenants_tarpit_endpoint_holds_only_its_share_and_never_opens_anothers_circuit() {
    const MAX_IN_FLIGHT: usize = 16;
    const PER_DESTINATION: usize = MAX_IN_FLIGHT / 8;
    let stack = start_stack(None).await;
    let tarpit = start_tarpit().await;
    let response = stack
        .client
        .put(format!("{}/_sim/webhook-endpoints/victim", stack.simulator))
        .json(&json!({"secret": WEBHOOK_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Tenant B (the stack's own) and its webhook at the simulator.
    stack
        .put_user(
            "b-user",
            json!({"channel_data": {"webhook": {
                "url": format!("{}/webhooks/victim", stack.simulator), "secret": WEBHOOK_SECRET}}}),
        )
        .await;
    // Tenant A, whose endpoint is the tarpit.
    let attacker_key = herald_api::cli::create_tenant(&stack.settings, "attacker")
        .await
        .unwrap();
    let response = stack
        .client
        .put(format!("{}/v1/users/a-user", stack.api))
        .bearer_auth(&attacker_key)
        .json(&json!({"channel_data": {"webhook": {"url": tarpit.url, "secret": WEBHOOK_SECRET}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let metrics_port = free_port();
    let _worker = worker_process_with(
        &stack.settings,
        metrics_port,
        &[
            (
                "HERALD_PROVIDERS__WEBHOOK__MAX_IN_FLIGHT",
                MAX_IN_FLIGHT.to_string(),
            ),
            ("HERALD_PROVIDERS__WEBHOOK__MAX_HELD", "64".to_owned()),
            ("HERALD_PROVIDERS__WEBHOOK__TIMEOUT_MS", "1000".to_owned()),
            (
                "HERALD_PROVIDERS__CIRCUIT_BREAKER__CONSECUTIVE_FAILURES",
                "3".to_owned(),
            ),
        ],
    );
    wait_until_ready(metrics_port).await;

    let attack: Vec<_> = (0..300).map(|_| alert(&["a-user"], &["webhook"])).collect();
    let response = stack
        .client
        .post(format!("{}/v1/notifications/batch", stack.api))
        .bearer_auth(&attacker_key)
        .json(&json!({ "notifications": attack }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let started = tokio::time::Instant::now();
    while tarpit.accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the tarpit is called"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // B's notifications while A's calls hang, time out and open A's circuit (about 3 s in all).
    let mut b_notifications = Vec::new();
    for _ in 0..8 {
        b_notifications.push(stack.notify(alert(&["b-user"], &["webhook"])).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for id in &b_notifications {
        let view = stack.wait_until_final(id, Duration::from_secs(30)).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }
    let slowest = stack
        .count(&format!(
            "SELECT ceil(1000 * extract(epoch FROM max(d.updated_at - n.created_at)))::bigint \
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
             WHERE n.tenant_id = '{}'",
            stack.tenant_id
        ))
        .await;
    assert!(
        slowest < 1000,
        "tenant B's slowest webhook took {slowest} ms from acceptance to its recorded send"
    );
    // The tarpit sees a timed-out call's connection close only when its reader runs, which on a
    // busy machine can be after the worker's next call to it opened: one more than the share.
    // Without the bound it held the lane's every slot (16).
    let most_held = tarpit.most_held.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=PER_DESTINATION + 1).contains(&most_held),
        "the tarpit held {most_held} calls at once; its share is {PER_DESTINATION}"
    );
    let metrics = worker_metrics(metrics_port).await;
    assert!(
        metrics.contains("herald_provider_circuit_state{provider=\"webhook\",state=\"closed\"} 1"),
        "the lane's circuit is untouched"
    );
    assert!(
        metrics.contains("herald_destination_circuits_open{provider=\"webhook\"} 1"),
        "the tarpit's own circuit is open"
    );
    let refused_without_call = metric_value(
        &metrics,
        "herald_destination_refusals_total{provider=\"webhook\",reason=\"circuit_open\"}",
    );
    assert!(
        refused_without_call > 0.0,
        "the tarpit's deliveries fail without a call while its circuit is open"
    );
    // A's surplus beyond its destination's held share was left queued (by admission, and by the
    // pump, which returns it without counting an attempt) instead of taking the lane's room ...
    let held_back = metric_value(
        &metrics,
        "herald_destination_refusals_total{provider=\"webhook\",reason=\"held_share\"}",
    );
    assert!(held_back > 0.0, "A's surplus waited queued");
    // ... and nothing of A's is lost meanwhile: each of its 300 deliveries exists, none was sent,
    // and none is left `sending` without an owner to send it.
    let of_tenant_a = format!(
        "FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
         WHERE n.tenant_id <> '{}'",
        stack.tenant_id
    );
    assert_eq!(
        stack.count(&format!("SELECT count(*) {of_tenant_a}")).await,
        300
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) {of_tenant_a} AND d.status = 'sent'"
            ))
            .await,
        0
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) {of_tenant_a} AND d.status = 'sending' AND d.owner_session IS NULL"
            ))
            .await,
        0,
        "a deferred delivery is queued, not orphaned"
    );
    drop(tarpit.holding);
}

fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
