//! `GET /v1/dead-letters` and `POST /v1/dead-letters/{delivery_id}/replay` against the whole
//! stack (docs/DESIGN.md, "Dead letters"): failures are listed per tenant, newest first, page by
//! page; a replay sends the same delivery id again with a fresh attempt budget, once.

use std::time::Duration;

use herald_config::Settings;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cancellation::{cancel, other_tenant_key};
use crate::helpers::*;

/// Failures must reach the dead letters, not open the circuit (which would only make them wait).
fn circuit_never_opens(settings: &mut Settings) {
    let circuit = &mut settings.providers.circuit_breaker;
    circuit.consecutive_failures = 10_000;
    circuit.failure_rate = 1.0;
    circuit.window = 10_000;
    circuit.minimum_calls = 10_000;
}

async fn get_json(stack: &Stack, api_key: &str, path_and_query: &str) -> (u16, Value) {
    let response = stack
        .client
        .get(format!("{}{path_and_query}", stack.api))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn replay_with(stack: &Stack, api_key: &str, delivery_id: &str) -> (u16, Value) {
    let response = stack
        .client
        .post(format!(
            "{}/v1/dead-letters/{delivery_id}/replay",
            stack.api
        ))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn replay(stack: &Stack, delivery_id: &str) -> (u16, Value) {
    replay_with(stack, &stack.api_key, delivery_id).await
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn failures_are_listed_per_tenant_and_a_replay_sends_the_same_delivery_once() {
    let mut stack = start_stack(None).await;
    stack.settings.worker.max_attempts = 2;
    circuit_never_opens(&mut stack.settings);
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    stack
        .configure_provider("twilio", json!({"failure_rate": 1.0}))
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    // Three notifications, failed one after the other.
    let mut notification_ids = Vec::new();
    for _ in 0..3 {
        let id = stack.notify(alert(&["u1"], &["sms"])).await;
        let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
        assert_eq!(view["status"], "failed", "{view}");
        notification_ids.push(id);
    }

    let (status, page) = get_json(&stack, &stack.api_key, "/v1/dead-letters").await;
    assert_eq!(status, 200, "{page}");
    let letters = items(&page);
    assert_eq!(letters.len(), 3, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    let listed_notifications: Vec<&str> = letters
        .iter()
        .map(|letter| letter["notification_id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = notification_ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed_notifications, newest_first);
    for letter in &letters {
        let notification_id = letter["notification_id"].as_str().unwrap();
        let delivery = &stack.notification(notification_id).await["deliveries"][0];
        assert_eq!(letter["delivery_id"], delivery["id"]);
        assert_eq!(letter["user_id"], "u1");
        assert_eq!(letter["channel"], "sms");
        assert_eq!(letter["provider"], "twilio");
        assert_eq!(letter["attempts"], 2);
        assert!(
            letter["last_error"]
                .as_str()
                .unwrap()
                .contains("gave up after 2 attempts"),
            "{letter}"
        );
        assert_eq!(letter["replayed_at"], Value::Null);
        assert!(letter["failed_at"].is_string());
    }

    // Page by page: the same letters, in the same order, nothing twice.
    let (_, first) = get_json(&stack, &stack.api_key, "/v1/dead-letters?limit=2").await;
    assert_eq!(items(&first).len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = get_json(
        &stack,
        &stack.api_key,
        &format!("/v1/dead-letters?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["next_cursor"], Value::Null, "{second}");
    let paged: Vec<Value> = items(&first).into_iter().chain(items(&second)).collect();
    assert_eq!(paged, letters);
    for bad in [
        "limit=0",
        "limit=501",
        "limit=two",
        "cursor=nope",
        "colour=red",
    ] {
        let (status, body) =
            get_json(&stack, &stack.api_key, &format!("/v1/dead-letters?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }

    // Another tenant sees none of them and cannot replay them.
    let other_key = other_tenant_key(&stack).await;
    let (status, page) = get_json(&stack, &other_key, "/v1/dead-letters").await;
    assert_eq!(status, 200);
    assert_eq!(items(&page), Vec::<Value>::new());
    let budget_id = letters[2]["delivery_id"].as_str().unwrap().to_owned();
    let budget_notification = letters[2]["notification_id"].as_str().unwrap().to_owned();
    let (status, body) = replay_with(&stack, &other_key, &budget_id).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        stack.notification(&budget_notification).await["deliveries"][0]["status"],
        "failed"
    );
    for unknown in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = replay(&stack, &unknown).await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }

    // A replay while the provider still fails gets a fresh budget of max_attempts (2) attempts,
    // numbered on from the first two, and ends in a new dead letter.
    let (status, body) = replay(&stack, &budget_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["notification_status"], "processing");
    let view = stack
        .wait_until_final(&budget_notification, Duration::from_secs(30))
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["deliveries"][0]["attempts"], 4, "{view}");
    assert_eq!(view["delivery_summary"]["failed"], 1);
    let attempt_numbers = stack
        .count(&format!(
            "SELECT count(DISTINCT attempt) FROM delivery_attempts \
             WHERE delivery_id = '{budget_id}' AND attempt BETWEEN 1 AND 4"
        ))
        .await;
    assert_eq!(attempt_numbers, 4, "every attempt kept, numbered 1 to 4");
    let (_, page) = get_json(&stack, &stack.api_key, "/v1/dead-letters").await;
    let letters_now = items(&page);
    assert_eq!(letters_now.len(), 4);
    assert_eq!(letters_now[0]["delivery_id"], budget_id.as_str());
    assert_eq!(letters_now[0]["attempts"], 4);
    assert_eq!(letters_now[0]["replayed_at"], Value::Null);
    assert!(letters_now[3]["replayed_at"].is_string(), "{page}");

    // The provider recovers: a replay is delivered once, with the same reference.
    stack
        .configure_provider("twilio", json!({"failure_rate": 0.0}))
        .await;
    let replayed_id = letters[1]["delivery_id"].as_str().unwrap().to_owned();
    let replayed_notification = letters[1]["notification_id"].as_str().unwrap().to_owned();
    let (status, body) = replay(&stack, &replayed_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["notification_id"], replayed_notification.as_str());
    let (status, body) = replay(&stack, &replayed_id).await;
    assert_eq!(status, 409, "a replay is pending: {body}");
    assert_eq!(body["error"]["code"], "delivery_not_failed");
    let view = stack
        .wait_until_final(&replayed_notification, Duration::from_secs(30))
        .await;
    assert_eq!(view["status"], "delivered", "{view}");
    let summary = &view["delivery_summary"];
    assert_eq!(
        (summary["sent"].as_i64(), summary["failed"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(view["deliveries"][0]["id"], replayed_id.as_str());
    assert_eq!(view["deliveries"][0]["attempts"], 3);
    let received: Value = stack
        .client
        .get(format!(
            "{}/_sim/received?provider=twilio&reference={replayed_id}&limit=100",
            stack.simulator
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        received["messages"].as_array().unwrap().len(),
        1,
        "delivered once, under the same reference: {received}"
    );
    let (status, body) = replay(&stack, &replayed_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["status"], "sent");
    // The third letter was never replayed: still failed, still counted.
    let untouched = letters[0]["notification_id"].as_str().unwrap();
    assert_eq!(stack.notification(untouched).await["status"], "failed");

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failed_delivery_of_a_cancelled_notification_is_not_replayed() {
    let mut stack = start_stack(None).await;
    circuit_never_opens(&mut stack.settings);
    // Email takes 3 s (within its timeout): the notification is still in progress when its SMS
    // has failed for good (a number the provider refuses: To equals From, a permanent 400).
    stack.settings.providers.sendgrid.timeout_ms = 6000;
    // A lease covers two of the longest provider calls (validated).
    stack.settings.worker.lease_ms = 12_000;
    stack
        .configure_provider("sendgrid", json!({"latency_ms": 3000}))
        .await;
    let from = stack.settings.providers.twilio.from.clone();
    stack
        .put_user("self", json!({"phone": from, "email": "self@example.com"}))
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack.notify(alert(&["self"], &["sms", "email"])).await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM dead_letters WHERE notification_id = '{id}'"),
            1,
            Duration::from_secs(30),
        )
        .await;
    let (status, body) = cancel(&stack, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["deliveries_in_flight"], 1,
        "the email is being sent: {body}"
    );

    let sms = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND channel = 'sms' AND status = 'failed'"
        ))
        .await;
    assert_eq!(sms, 1);
    let (_, page) = get_json(&stack, &stack.api_key, "/v1/dead-letters").await;
    let delivery_id = items(&page)[0]["delivery_id"].as_str().unwrap().to_owned();
    let (status, body) = replay(&stack, &delivery_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "notification_cancelled");

    // The email in flight ends as it ends and is counted; the status stays cancelled.
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM notification_states WHERE id = '{id}' AND deliveries_sent = 1"),
            1,
            Duration::from_secs(30),
        )
        .await;
    let view = stack.notification(&id).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["delivery_summary"]["failed"], 1);
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND channel = 'sms' AND status = 'failed'"
            ))
            .await,
        1,
        "the refused replay changed nothing"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
