//! Bulkheads (docs/DESIGN.md, "Provider lanes"): a provider that hangs fills its own lane only.
//! The other channels of the very same notifications keep their throughput, and nothing of the
//! hanging channel is lost: it waits (in its lane, then in `delivery_queue`) and is sent once the
//! provider answers again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// Notifications per phase, each to email, SMS and Slack.
const NOTIFICATIONS: usize = 400;
/// Email and SMS answer this slowly, so that a phase takes a measurable time (about 1.3 s at 16
/// calls in flight).
const HEALTHY_LATENCY_MS: u64 = 50;

async fn post_phase(stack: &Stack, phase: &str) {
    let notifications: Vec<Value> = (0..NOTIFICATIONS)
        .map(|index| {
            let mut notification = alert(&[&format!("user-{index}")], &["email", "sms", "slack"]);
            notification["data"]["machine"] = json!(phase);
            notification
        })
        .collect();
    stack.notify_batch(notifications).await;
}

/// How long until `expected` email and SMS deliveries are sent in all, from `started`.
async fn email_and_sms_sent_after(stack: &Stack, expected: usize, started: Instant) -> Duration {
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE channel IN ('email', 'sms') AND status = 'sent'",
            expected as i64,
            Duration::from_secs(60),
        )
        .await;
    started.elapsed()
}

#[tokio::test]
async fn a_hanging_provider_fills_its_own_lane_while_the_other_channels_keep_their_pace() {
    let stack = start_stack_with(None, None, |settings| {
        settings.providers.sendgrid.max_in_flight = 16;
        settings.providers.twilio.max_in_flight = 16;
        // A small Slack lane: the hanging provider fills it at once, the rest overflows into
        // delivery_queue.
        settings.providers.slack.max_in_flight = 8;
        settings.providers.slack.max_held = 32;
        settings.providers.circuit_breaker.open_for_ms = 1000;
        settings.providers.circuit_breaker.max_open_for_ms = 2000;
    })
    .await;
    for provider in ["sendgrid", "twilio"] {
        stack
            .configure_provider(provider, json!({"latency_ms": HEALTHY_LATENCY_MS}))
            .await;
    }
    let tenant_id = stack.tenant_id;
    execute(
        &stack.database,
        &format!(
            "INSERT INTO users (tenant_id, id, email, phone, channel_data) \
             SELECT '{tenant_id}', 'user-' || i, 'user' || i || '@example.com', \
                    '+1415555' || lpad(i::text, 4, '0'), \
                    jsonb_build_object('slack', jsonb_build_object('webhook_url', \
                        '{}/slack/services/T0001/B0001/secret-' || i)) \
             FROM generate_series(0, {}) AS i",
            stack.simulator,
            NOTIFICATIONS - 1
        ),
    )
    .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    // Every provider healthy: the pace of email and SMS, and every Slack message out.
    let started = Instant::now();
    post_phase(&stack, "healthy").await;
    let healthy = email_and_sms_sent_after(&stack, 2 * NOTIFICATIONS, started).await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE channel = 'slack' AND status = 'sent'",
            NOTIFICATIONS as i64,
            Duration::from_secs(60),
        )
        .await;

    // Slack hangs: every call outlasts the lane's timeout (1 s).
    stack
        .configure_provider("slack", json!({"latency_ms": 60_000}))
        .await;
    let started = Instant::now();
    post_phase(&stack, "slack hangs").await;
    let beside_a_hanging_slack = email_and_sms_sent_after(&stack, 4 * NOTIFICATIONS, started).await;
    let slack_waiting = stack
        .count("SELECT count(*) FROM deliveries WHERE channel = 'slack' AND status <> 'sent'")
        .await;
    let slack_overflow = stack
        .count("SELECT count(*) FROM delivery_queue WHERE provider = 'slack'")
        .await;
    println!(
        "email and SMS: {healthy:?} with every provider healthy, {beside_a_hanging_slack:?} beside a hanging Slack \
         ({slack_waiting} Slack deliveries waiting, {slack_overflow} of them in delivery_queue)"
    );
    assert!(
        slack_waiting > (NOTIFICATIONS / 2) as i64 && slack_overflow > 0,
        "Slack really hung and its lane overflowed ({slack_waiting} waiting, {slack_overflow} queued)"
    );
    // The same pace, with generous slack for a shared machine (and a floor of a second, so that a
    // very quick healthy phase does not make the ratio noise).
    let allowed = healthy.max(Duration::from_secs(1)) * 3;
    assert!(
        beside_a_hanging_slack <= allowed,
        "email and SMS took {beside_a_hanging_slack:?} beside a hanging Slack, {healthy:?} without"
    );

    // Slack answers again: every one of its deliveries goes out; none failed for the hang.
    stack
        .configure_provider("slack", json!({"latency_ms": 0}))
        .await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE channel = 'slack' AND status = 'sent'",
            2 * NOTIFICATIONS as i64,
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        stack
            .count("SELECT count(*) FROM deliveries WHERE status <> 'sent'")
            .await,
        0
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM notification_states WHERE status = 'delivered'")
            .await,
        2 * NOTIFICATIONS as i64
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
