//! `POST /v1/notifications/{id}/cancel` against the whole stack (docs/DESIGN.md, "Cancellation"):
//! what is cancelled never reaches the simulator, what was in flight is counted, and the counters
//! add up.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// Posts the cancellation with `api_key`; the status and the JSON body.
pub async fn cancel_with(stack: &Stack, api_key: &str, id: &str) -> (u16, Value) {
    let response = stack
        .client
        .post(format!("{}/v1/notifications/{id}/cancel", stack.api))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub async fn cancel(stack: &Stack, id: &str) -> (u16, Value) {
    cancel_with(stack, &stack.api_key, id).await
}

/// The API key of a second tenant on the same stack.
pub async fn other_tenant_key(stack: &Stack) -> String {
    let name = format!("other-{}", Uuid::new_v4().simple());
    herald_api::cli::create_tenant(&stack.settings, &name)
        .await
        .unwrap()
}

/// Polls until the notification's counters add up to its expected deliveries, with every group
/// expanded (so `expected` is final too).
pub async fn wait_until_counted(stack: &Stack, id: &str, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let view = stack.notification(id).await;
        let summary = &view["delivery_summary"];
        let counted: i64 = ["sent", "failed", "skipped", "cancelled"]
            .iter()
            .map(|field| summary[field].as_i64().unwrap())
            .sum();
        if counted == summary["expected"].as_i64().unwrap() && summary["expansions_pending"] == 0 {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters still do not add up after {timeout:?}: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_cancelled_scheduled_notification_is_never_released_nor_sent() {
    let stack = start_stack(None).await;
    stack
        .put_user("u1", json!({"email": "ops@example.com"}))
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let due = Utc::now() + chrono::Duration::seconds(3);
    let mut cancelled = alert(&["u1"], &["email"]);
    cancelled["scheduled_for"] = json!(due.to_rfc3339());
    let mut kept = cancelled.clone();
    kept["content"]["body"] = json!("kept");
    let cancelled_id = stack.notify(cancelled).await;
    let kept_id = stack.notify(kept).await;
    assert_eq!(
        stack.notification(&cancelled_id).await["status"],
        "scheduled"
    );

    let (status, body) = cancel(&stack, &cancelled_id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], cancelled_id.as_str());
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["deliveries_cancelled"], 0);
    assert_eq!(body["deliveries_in_flight"], 0);
    assert_eq!(body["deliveries_not_created"], 1);
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM scheduled_notifications WHERE notification_id = '{cancelled_id}'"
            ))
            .await,
        0
    );

    // The scheduler runs: the other notification due at the same time is released and sent.
    let view = stack
        .wait_until_final(&kept_id, Duration::from_secs(30))
        .await;
    assert_eq!(view["status"], "delivered");
    // Give a stray release of the cancelled one every chance to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let view = stack.notification(&cancelled_id).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["deliveries"], json!([]), "{view}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM outbox_batches WHERE '{cancelled_id}' = ANY(notification_ids)"
            ))
            .await,
        0
    );
    let received = stack.received("sendgrid").await;
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "only the kept one: {received}");
    assert_eq!(
        stack.simulator_stats().await["sendgrid"]["requests"],
        1,
        "the cancelled notification never reached the provider"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancelling_behind_a_slow_provider_stops_the_waiting_deliveries_and_counts_every_one() {
    let mut stack = start_stack(None).await;
    // One call at a time, 300 ms each, at most two held: the rest waits in `delivery_queue`.
    stack.settings.providers.sendgrid.max_in_flight = 1;
    stack.settings.providers.sendgrid.max_held = 2;
    stack
        .configure_provider("sendgrid", json!({"latency_ms": 300}))
        .await;
    let recipients = 30;
    stack.insert_users(recipients).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack
        .notify(alert_to_first_users(recipients, &["email"]))
        .await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'sent'"),
            2,
            Duration::from_secs(30),
        )
        .await;

    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let cancelled_now = body["deliveries_cancelled"].as_i64().unwrap();
    let in_flight = body["deliveries_in_flight"].as_i64().unwrap();
    assert!(cancelled_now > 0, "most were still waiting: {body}");
    assert!(
        in_flight <= 2,
        "at most what the lane holds (max_held): {body}"
    );

    let view = wait_until_counted(&stack, &id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    let summary = &view["delivery_summary"];
    assert_eq!(summary["expected"], recipients as i64);
    assert_eq!(summary["failed"], 0);
    assert!(
        summary["cancelled"].as_i64().unwrap() >= cancelled_now,
        "{summary}"
    );

    // Nothing more goes out once the in-flight ones ended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent_in_database = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'sent'"
        ))
        .await;
    assert_eq!(summary["sent"].as_i64().unwrap(), sent_in_database);
    let stats = stack.simulator_stats().await;
    assert_eq!(
        stats["sendgrid"]["requests"].as_i64().unwrap(),
        sent_in_database,
        "only the sent ones reached the provider: {stats}"
    );
    let cancelled_rows = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'cancelled'"
        ))
        .await;
    assert_eq!(summary["cancelled"].as_i64().unwrap(), cancelled_rows);
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM delivery_attempts a JOIN deliveries d \
                   ON d.notification_id = a.notification_id AND d.id = a.delivery_id \
                 WHERE d.notification_id = '{id}' AND d.status = 'cancelled'"
            ))
            .await,
        0,
        "a cancelled delivery was never attempted"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM delivery_queue WHERE notification_id = '{id}'"
            ))
            .await,
        0,
        "nothing of it is left in the queue"
    );
    assert_eq!(
        stack.notification(&id).await["delivery_summary"],
        *summary,
        "and nothing moved since"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancelling_twice_a_final_one_another_tenants_or_an_unknown_id_is_refused() {
    let stack = start_stack(None).await;
    stack
        .put_user("u1", json!({"email": "ops@example.com"}))
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let mut scheduled = alert(&["u1"], &["email"]);
    scheduled["scheduled_for"] = json!((Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    let id = stack.notify(scheduled).await;

    let other_key = other_tenant_key(&stack).await;
    let (status, body) = cancel_with(&stack, &other_key, &id).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        stack.notification(&id).await["status"],
        "scheduled",
        "another tenant's request changed nothing"
    );

    let (status, _) = cancel(&stack, &id).await;
    assert_eq!(status, 200);
    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "notification_final");
    assert_eq!(body["error"]["details"]["status"], "cancelled");

    let delivered = stack.notify(alert(&["u1"], &["email"])).await;
    stack
        .wait_until_final(&delivered, Duration::from_secs(30))
        .await;
    let (status, body) = cancel(&stack, &delivered).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["status"], "delivered");
    assert_eq!(stack.notification(&delivered).await["status"], "delivered");

    let (status, body) = cancel(&stack, &Uuid::now_v7().to_string()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = cancel(&stack, "not-a-uuid").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let response = stack
        .client
        .post(format!("{}/v1/notifications/{id}/cancel", stack.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "no key, no cancellation");
    let response = stack
        .client
        .get(format!("{}/v1/notifications/{id}/cancel", stack.api))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn records_admitted_after_the_cancellation_are_created_cancelled_and_counted() {
    let stack = start_stack(None).await;
    stack.insert_users(3).await;
    // No worker yet: the records wait in Kafka.
    let id = stack
        .notify(alert(&["user-0", "user-1", "user-2"], &["email", "sms"]))
        .await;
    stack
        .wait_for_count(
            &format!(
                "SELECT 1 - count(*) FROM outbox_batches WHERE '{id}' = ANY(notification_ids)"
            ),
            1,
            Duration::from_secs(30),
        )
        .await;

    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries_cancelled"], 0);
    assert_eq!(body["deliveries_in_flight"], 0);
    assert_eq!(body["deliveries_not_created"], 6);

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let view = wait_until_counted(&stack, &id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["delivery_summary"]["cancelled"], 6, "{view}");
    let deliveries = view["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 6);
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery["status"] == "cancelled" && delivery["attempts"] == 0),
        "{view}"
    );
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["sendgrid"]["requests"], 0, "{stats}");
    assert_eq!(stats["twilio"]["requests"], 0, "{stats}");

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_delivery_in_flight_that_must_be_retried_after_the_cancellation_is_cancelled_instead() {
    let stack = start_stack(None).await;
    stack
        .put_user("u1", json!({"email": "ops@example.com"}))
        .await;
    // The first call is held past the worker's 1 s timeout: in flight when cancelled, then a
    // retryable failure.
    stack
        .configure_provider(
            "sendgrid",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 2500}),
        )
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack.notify(alert(&["u1"], &["email"])).await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'sending'"),
            1,
            Duration::from_secs(30),
        )
        .await;
    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries_in_flight"], 1, "{body}");

    let view = wait_until_counted(&stack, &id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["delivery_summary"]["cancelled"], 1, "{view}");
    assert_eq!(view["deliveries"][0]["status"], "cancelled");
    assert_eq!(
        view["deliveries"][0]["attempts"], 1,
        "the timed-out call only"
    );
    // Past any retry delay (retry_max_ms is 1 s in tests): no second call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["sendgrid"]["requests"], 1, "{stats}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM delivery_queue WHERE notification_id = '{id}'"
            ))
            .await,
        0
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancellations_during_busy_delivery_never_deadlock_and_every_counter_adds_up() {
    let mut stack = start_stack(None).await;
    stack.settings.providers.sendgrid.max_in_flight = 4;
    stack.settings.providers.sendgrid.max_held = 8;
    stack.settings.providers.twilio.max_in_flight = 4;
    stack.settings.providers.twilio.max_held = 8;
    // Failures here are retries to race with, not a reason to open a circuit.
    stack
        .settings
        .providers
        .circuit_breaker
        .consecutive_failures = 10_000;
    stack.settings.providers.circuit_breaker.failure_rate = 1.0;
    stack
        .configure_provider("sendgrid", json!({"latency_ms": 20, "failure_rate": 0.2}))
        .await;
    stack
        .configure_provider("twilio", json!({"latency_ms": 20, "failure_rate": 0.2}))
        .await;
    let recipients = 20;
    stack.insert_users(recipients).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            stack
                .notify(alert_to_first_users(recipients, &["email", "sms"]))
                .await,
        );
    }
    // Admission, claims, retries and records are all busy with these notifications now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three at a time: the API bounds the reads and short transactions in flight (4 in tests).
    let mut answers = Vec::new();
    for chunk in ids.chunks(3) {
        answers.extend(futures::future::join_all(chunk.iter().map(|id| cancel(&stack, id))).await);
    }
    for (status, body) in &answers {
        // A final one (all sent already) is the only other acceptable answer; never a 503.
        assert!(
            *status == 200 || (*status == 409 && body["error"]["code"] == "notification_final"),
            "{status}: {body}"
        );
    }
    assert!(
        answers.iter().any(|(status, _)| *status == 200),
        "something was cancelled: {answers:?}"
    );

    for id in &ids {
        let view = wait_until_counted(&stack, id, Duration::from_secs(60)).await;
        let summary = &view["delivery_summary"];
        for (status, field) in [
            ("sent", "sent"),
            ("failed", "failed"),
            ("cancelled", "cancelled"),
        ] {
            let rows = stack
                .count(&format!(
                    "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = '{status}'"
                ))
                .await;
            assert_eq!(
                summary[field].as_i64().unwrap(),
                rows,
                "{field} of {id}: {view}"
            );
        }
    }
    // Every call the simulator accepted is a sent delivery, and nothing is left to send.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = stack.simulator_stats().await;
    let accepted = stats["sendgrid"]["accepted"].as_i64().unwrap()
        + stats["twilio"]["accepted"].as_i64().unwrap();
    assert_eq!(
        accepted,
        stack
            .count("SELECT count(*) FROM deliveries WHERE status = 'sent'")
            .await,
        "{stats}"
    );
    assert_eq!(stack.count("SELECT count(*) FROM delivery_queue").await, 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// Deliveries a lane already holds (claimed `sending`, waiting for their rate-limit tokens) are
/// cancelled before their calls once the worker learns of the cancellation, instead of being sent
/// after the tenant cancelled: only the calls already started (and those a poll interval's worth of
/// tokens allowed) reach the provider.
#[tokio::test]
async fn held_deliveries_waiting_for_tokens_are_cancelled_before_their_calls() {
    let mut stack = start_stack(None).await;
    const RATE: u32 = 20;
    stack.settings.providers.sendgrid.requests_per_second = RATE;
    stack.settings.providers.sendgrid.max_in_flight = 4;
    stack.settings.providers.sendgrid.max_held = 512;
    let recipients = 300;
    stack.insert_users(recipients).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack
        .notify(alert_to_first_users(recipients, &["email"]))
        .await;
    let sent = format!(
        "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'sent'"
    );
    stack
        .wait_for_count(&sent, 10, Duration::from_secs(30))
        .await;

    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 200, "{body}");
    let sent_at_cancel = stack.count(&sent).await;
    let in_flight = body["deliveries_in_flight"].as_i64().unwrap();
    assert!(
        in_flight > recipients as i64 / 2,
        "most deliveries were held by the lane, not queued: {body}"
    );

    let view = wait_until_counted(&stack, &id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    let summary = &view["delivery_summary"];
    let (sent_in_the_end, cancelled) = (
        summary["sent"].as_i64().unwrap(),
        summary["cancelled"].as_i64().unwrap(),
    );
    println!(
        "{sent_at_cancel} sent when cancelled ({in_flight} in flight), {sent_in_the_end} in the end, {cancelled} cancelled"
    );
    // The calls started before the worker's next poll (200 ms in tests) at most: a few seconds of
    // tokens is generous on a shared machine.
    assert!(
        sent_in_the_end - sent_at_cancel <= 3 * i64::from(RATE),
        "{} were sent after the cancellation: {summary}",
        sent_in_the_end - sent_at_cancel
    );
    assert_eq!(sent_in_the_end + cancelled, recipients as i64, "{summary}");
    assert_eq!(summary["failed"], 0);

    // What was cancelled in the lane says so in its attempts; the provider saw only the sent ones.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled_before_call = stack
        .count(&format!(
            "SELECT count(*) FROM delivery_attempts WHERE notification_id = '{id}' AND outcome = 'cancelled'"
        ))
        .await;
    assert!(cancelled_before_call > 0, "held deliveries were cancelled");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'cancelled'"
            ))
            .await,
        cancelled
    );
    let stats = stack.simulator_stats().await;
    assert_eq!(
        stats["sendgrid"]["requests"].as_i64().unwrap(),
        sent_in_the_end,
        "only the sent ones reached the provider: {stats}"
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
