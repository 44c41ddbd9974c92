//! Delivery status events end to end (docs/DESIGN.md, "Status events and webhook subscriptions"):
//! every status change reaches the events topic, tenants subscribe through the API, and their
//! endpoints (the simulator's Standard Webhooks receiver, which verifies every signature with the
//! secret the API answered) receive the events they asked for, and only their own, with retries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use herald_domain::DeliveryStatus;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::{json, Value};

use crate::helpers::*;

/// Subscribes through the API as `api_key`; returns (id, secret).
async fn subscribe(stack: &Stack, api_key: &str, url: &str, events: &[&str]) -> (String, String) {
    let response = stack
        .client
        .post(format!("{}/v1/webhooks", stack.api))
        .bearer_auth(api_key)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates `/webhooks/{endpoint}` on `simulator`, verifying signatures with `secret`.
async fn register_endpoint(stack: &Stack, simulator: &str, endpoint: &str, secret: &str) {
    let response = stack
        .client
        .put(format!("{simulator}/_sim/webhook-endpoints/{endpoint}"))
        .json(&json!({"secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Subscribes `endpoint` of `simulator` and registers it there with the answered secret.
async fn subscribe_endpoint(
    stack: &Stack,
    api_key: &str,
    simulator: &str,
    endpoint: &str,
    events: &[&str],
) -> String {
    let url = format!("{simulator}/webhooks/{endpoint}");
    let (id, secret) = subscribe(stack, api_key, &url, events).await;
    register_endpoint(stack, simulator, endpoint, &secret).await;
    id
}

/// The events `endpoint` of `simulator` accepted (signature verified), oldest first, with the
/// `webhook-id` each came with.
async fn received_events(stack: &Stack, simulator: &str, endpoint: &str) -> Vec<(String, Value)> {
    let received: Value = stack
        .client
        .get(format!(
            "{simulator}/_sim/received?provider=webhook&limit=100000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["recipient"] == endpoint)
        .map(|message| {
            let body: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
            (message["reference"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

/// Waits until `endpoint` accepted at least `expected` events, and returns them.
async fn wait_for_events(
    stack: &Stack,
    simulator: &str,
    endpoint: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let events = received_events(stack, simulator, endpoint).await;
        if events.len() >= expected {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{endpoint} received {} of {expected} events after {timeout:?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn webhook_stats(stack: &Stack, simulator: &str) -> Value {
    let stats: Value = stack
        .client
        .get(format!("{simulator}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["webhook"].clone()
}

/// Every event on the topic, decoded.
async fn topic_events(stack: &Stack, expected: usize) -> Vec<Value> {
    herald_testing::consume_raw(
        &stack.settings.kafka.brokers,
        &stack.settings.status_events.topic,
        expected,
        Duration::from_secs(20),
    )
    .await
    .into_iter()
    .map(|record| {
        let event: Value = serde_json::from_slice(&record.payload).unwrap();
        assert_eq!(
            record.key,
            event["data"]["notification_id"]
                .as_str()
                .unwrap()
                .as_bytes(),
            "keyed by notification id"
        );
        event
    })
    .collect()
}

/// Waits until the outbox is empty, i.e. every status change so far is on the topic.
async fn wait_until_relayed(stack: &Stack) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stack.count("SELECT count(*) FROM status_events").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "status events not relayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event id of every event on the topic, and that each delivery's events form an unbroken
/// chain of allowed moves from its creation (`previous_status` null) to its current status.
async fn assert_topic_has_every_change(stack: &Stack, topic: &[Value]) {
    let mut chains: BTreeMap<String, Vec<(Option<String>, String)>> = BTreeMap::new();
    for event in topic {
        let data = &event["data"];
        assert_eq!(
            event["type"],
            format!("delivery.{}", data["status"].as_str().unwrap())
        );
        chains
            .entry(data["delivery_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                data["previous_status"].as_str().map(str::to_owned),
                data["status"].as_str().unwrap().to_owned(),
            ));
    }
    let deliveries: Vec<(String, String)> = stack
        .database
        .connection()
        .query_all(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT id::text AS id, status::text AS status FROM deliveries",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "id").unwrap(),
                row.try_get::<String>("", "status").unwrap(),
            )
        })
        .collect();
    assert_eq!(chains.len(), deliveries.len(), "every delivery has events");
    for (delivery_id, status) in deliveries {
        let chain = chains.remove(&delivery_id).expect("events of the delivery");
        // Follow the chain from creation; each event's previous status is the one before.
        let mut remaining = chain.clone();
        let mut current: Option<String> = None;
        while let Some(index) = remaining
            .iter()
            .position(|(previous, _)| *previous == current)
        {
            let (previous, next) = remaining.remove(index);
            if let Some(previous) = previous {
                let (from, to) = (
                    DeliveryStatus::parse(&previous).unwrap(),
                    DeliveryStatus::parse(&next).unwrap(),
                );
                assert!(from.may_become(to), "{previous} → {next} is not a move");
            }
            current = Some(next);
        }
        assert!(
            remaining.is_empty(),
            "{delivery_id}: unchained events {chain:?}"
        );
        assert_eq!(
            current.as_deref(),
            Some(status.as_str()),
            "{delivery_id}: {chain:?}"
        );
    }
}

/// Every event on the topic once: copies of an event (same id) that a relay produced again after a
/// crash are checked to be the same event and dropped, as a consumer deduplicating by id would.
fn deduplicated_by_id(topic: Vec<Value>) -> (Vec<Value>, usize) {
    let mut first_by_id: HashMap<String, Value> = HashMap::new();
    let mut copies = 0;
    let mut unique = Vec::new();
    for event in topic {
        let id = event["id"].as_str().unwrap().to_owned();
        match first_by_id.get(&id) {
            Some(first) => {
                assert_eq!(*first, event, "two different events share the id {id}");
                copies += 1;
            }
            None => {
                first_by_id.insert(id, event.clone());
                unique.push(event);
            }
        }
    }
    (unique, copies)
}

/// The relay's crash point: a worker killed with events leased and produced but not acknowledged
/// (its broker paused, so the produce requests wait in the broker's sockets) loses none of them.
/// The leases expire, another worker produces them again, and a consumer that deduplicates by id
/// sees every status change exactly once.
#[tokio::test]
async fn a_worker_killed_mid_relay_loses_no_status_event() {
    let broker = KafkaCluster::start(1).await;
    let mut stack = start_stack_with(Some(&broker.brokers()), None, |settings| {
        settings.status_events.relay_lease_ms = 5_000;
        // 400 sends over about ten seconds: sends (and their events) go on while the broker is
        // paused; unthrottled, all of them could be over before the pause, with nothing to lease.
        settings.providers.twilio.requests_per_second = 40;
    })
    .await;
    // The restarted worker is the same group member (as a StatefulSet pod would be).
    stack.settings.worker.instance_id = Some("worker-0".into());
    stack
        .configure_provider("twilio", json!({"latency_ms": 20}))
        .await;
    const USERS: usize = 400;
    stack.insert_users(USERS).await;
    let mut worker = worker_process(&stack.settings, free_port());
    stack.notify_each_user(0..USERS, "sms").await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status = 'sent'",
            50,
            Duration::from_secs(60),
        )
        .await;

    // Sends go on without the broker, so their events keep coming; the relay leases them and
    // waits for acknowledgements that cannot come. Then the worker dies.
    broker.pause();
    let leased = "SELECT count(*) FROM status_events WHERE lease_until > now()";
    let caught_mid_relay = herald_testing::eventually(Duration::from_secs(10), || async {
        stack.count(leased).await > 0
    })
    .await;
    worker.kill().await.unwrap();
    worker.wait().await.unwrap();
    let orphaned = stack.count(leased).await;
    broker.resume();
    assert!(
        caught_mid_relay && orphaned > 0,
        "the worker died holding leased events ({orphaned})"
    );

    let _restarted = worker_process(&stack.settings, free_port());
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status = 'sent'",
            USERS as i64,
            Duration::from_secs(120),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stack.count("SELECT count(*) FROM status_events").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "status events not relayed after the crash"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = herald_testing::topic_record_count(
        &stack.settings.kafka.brokers,
        &stack.settings.status_events.topic,
    )
    .await as usize;
    let (topic, copies) = deduplicated_by_id(topic_events(&stack, records).await);
    println!(
        "{orphaned} events leased by the killed worker; {records} records on the topic, {copies} of them copies"
    );
    assert_topic_has_every_change(&stack, &topic).await;
}

#[tokio::test]
async fn every_status_change_reaches_the_topic_and_the_subscribers_that_asked_for_it() {
    let stack = start_stack_with(None, None, |settings| {
        settings.worker.max_attempts = 2;
    })
    .await;
    let other_key = herald_api::cli::create_tenant(
        &stack.settings,
        &format!("other-{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .unwrap();
    let simulator = stack.simulator.clone();
    subscribe_endpoint(&stack, &stack.api_key, &simulator, "everything", &["*"]).await;
    subscribe_endpoint(
        &stack,
        &stack.api_key,
        &simulator,
        "failures",
        &["delivery.failed"],
    )
    .await;
    subscribe_endpoint(&stack, &other_key, &simulator, "other-tenant", &["*"]).await;
    for user in ["u1", "u2", "u3"] {
        stack
            .put_user(
                user,
                json!({"email": format!("{user}@example.com"), "phone": "+14155550100"}),
            )
            .await;
    }
    let (stop, worker) = start_worker(&stack.settings).await;

    // Three notifications by email (one recipient unknown: skipped) and one by SMS that fails.
    let mut notifications = Vec::new();
    for _ in 0..3 {
        notifications.push(
            stack
                .notify(alert(&["u1", "u2", "u3", "nobody"], &["email"]))
                .await,
        );
    }
    stack
        .configure_provider("twilio", json!({"failure_rate": 1.0}))
        .await;
    let failing = stack.notify(alert(&["u1"], &["sms"])).await;
    for id in &notifications {
        stack.wait_until_final(id, Duration::from_secs(30)).await;
    }
    let view = stack
        .wait_until_final(&failing, Duration::from_secs(30))
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    stack
        .configure_provider("twilio", json!({"failure_rate": 0.0}))
        .await;

    // Any statement that changes a status is announced, not only the worker's: a provider's report
    // written straight into the table.
    let reported = stack
        .count(
            "WITH moved AS (UPDATE deliveries SET status = 'delivered' \
             WHERE id = (SELECT id FROM deliveries WHERE status = 'sent' LIMIT 1) RETURNING 1) \
             SELECT count(*) FROM moved",
        )
        .await;
    assert_eq!(reported, 1);

    wait_until_relayed(&stack).await;
    let records = herald_testing::topic_record_count(
        &stack.settings.kafka.brokers,
        &stack.settings.status_events.topic,
    )
    .await as usize;
    let topic = topic_events(&stack, records).await;
    assert_eq!(topic.len(), records);
    assert_topic_has_every_change(&stack, &topic).await;
    let ids: HashSet<&str> = topic
        .iter()
        .map(|event| event["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), topic.len(), "one id per event");
    assert!(topic
        .iter()
        .all(|event| event["tenant_id"] == stack.tenant_id.to_string()));
    let types: HashMap<&str, usize> = topic.iter().fold(HashMap::new(), |mut counts, event| {
        *counts.entry(event["type"].as_str().unwrap()).or_default() += 1;
        counts
    });
    assert_eq!(types["delivery.sent"], 9, "{types:?}");
    assert_eq!(types["delivery.skipped"], 3, "{types:?}");
    assert_eq!(types["delivery.failed"], 1, "{types:?}");
    assert_eq!(types["delivery.delivered"], 1, "{types:?}");

    // `*`: every event of the tenant, once each, with the event id as `webhook-id`.
    let everything = wait_for_events(
        &stack,
        &simulator,
        "everything",
        topic.len(),
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let everything_now = received_events(&stack, &simulator, "everything").await;
    assert_eq!(
        everything_now.len(),
        topic.len(),
        "no event twice, none extra"
    );
    for (webhook_id, event) in &everything {
        assert_eq!(event["id"].as_str().unwrap(), webhook_id);
        assert!(ids.contains(webhook_id.as_str()));
    }
    // `delivery.failed` only: the one failure.
    let failures =
        wait_for_events(&stack, &simulator, "failures", 1, Duration::from_secs(10)).await;
    let failure_types: Vec<&Value> = failures.iter().map(|(_, event)| &event["type"]).collect();
    assert_eq!(failures.len(), 1, "{failure_types:?}");
    assert_eq!(failures[0].1["type"], "delivery.failed");
    assert_eq!(failures[0].1["data"]["channel"], "sms");
    assert_eq!(failures[0].1["data"]["previous_status"], "sending");
    // The other tenant sent nothing: its endpoint got nothing of ours.
    assert!(received_events(&stack, &simulator, "other-tenant")
        .await
        .is_empty());
    // Every request verified with the secret the API answered.
    let stats = webhook_stats(&stack, &simulator).await;
    assert_eq!(stats["rejected"], 0, "{stats}");
    assert_eq!(
        stack
            .count("SELECT count(*) FROM webhook_event_sends")
            .await,
        0
    );

    stop.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failing_subscriber_gets_its_events_after_recovery_while_another_keeps_receiving() {
    let stack = start_stack(None).await;
    // The failing endpoint lives on a simulator of its own, so its faults touch nobody else.
    let failing_simulator = start_simulator().await.http;
    let simulator = stack.simulator.clone();
    subscribe_endpoint(
        &stack,
        &stack.api_key,
        &simulator,
        "steady",
        &["delivery.sent"],
    )
    .await;
    subscribe_endpoint(
        &stack,
        &stack.api_key,
        &failing_simulator,
        "flaky",
        &["delivery.sent"],
    )
    .await;
    let response = stack
        .client
        .put(format!("{failing_simulator}/_sim/config/webhook"))
        .json(&json!({"failure_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stack
        .put_user("u1", json!({"email": "u1@example.com"}))
        .await;
    let (stop, worker) = start_worker(&stack.settings).await;

    for _ in 0..5 {
        stack.notify(alert(&["u1"], &["email"])).await;
    }
    // The steady subscriber receives all five while the flaky one answers 500.
    let steady = wait_for_events(&stack, &simulator, "steady", 5, Duration::from_secs(30)).await;
    assert!(steady
        .iter()
        .all(|(_, event)| event["type"] == "delivery.sent"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let failed = webhook_stats(&stack, &failing_simulator).await["server_errors"]
            .as_u64()
            .unwrap();
        if failed >= 10 {
            break; // every event tried at least twice
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{failed} failed calls"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(received_events(&stack, &failing_simulator, "flaky")
        .await
        .is_empty());
    assert_eq!(
        stack
            .count("SELECT count(*) FROM webhook_event_sends WHERE attempts >= 2 AND parked_at IS NULL")
            .await,
        5,
        "the flaky subscriber's events wait for their next attempt"
    );

    // Recovery: every event arrives, once, and nothing is left or parked.
    let response = stack
        .client
        .put(format!("{failing_simulator}/_sim/config/webhook"))
        .json(&json!({"failure_rate": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let flaky = wait_for_events(
        &stack,
        &failing_simulator,
        "flaky",
        5,
        Duration::from_secs(20),
    )
    .await;
    let flaky_ids: HashSet<&str> = flaky.iter().map(|(id, _)| id.as_str()).collect();
    let steady_ids: HashSet<&str> = steady.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(flaky_ids, steady_ids, "the same events, by id");
    stack
        .wait_for_count(
            "SELECT 5 - count(*) FROM webhook_event_sends",
            5,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        webhook_stats(&stack, &failing_simulator).await["rejected"],
        0
    );

    stop.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn subscriptions_are_validated_listed_without_secrets_bounded_and_deleted() {
    let stack = start_stack(None).await;
    let post = |body: Value| {
        let stack = &stack;
        async move {
            let response = stack
                .client
                .post(format!("{}/v1/webhooks", stack.api))
                .bearer_auth(&stack.api_key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let fields = |body: &Value| -> Vec<String> {
        body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|detail| detail["field"].as_str().unwrap().to_owned())
            .collect()
    };
    let url = format!("{}/webhooks/hook", stack.simulator);
    for (body, expected) in [
        (json!({"url": url, "events": []}), vec!["events"]),
        (
            json!({"url": url, "events": ["delivery.sent", "delivery.exploded"]}),
            vec!["events[1]"],
        ),
        (json!({"url": url, "events": ["sent"]}), vec!["events[0]"]),
        (json!({"url": "not a url", "events": ["*"]}), vec!["url"]),
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            vec!["url"],
        ),
        (
            json!({"url": url, "events": "delivery.sent"}),
            vec!["events"],
        ),
        // Missing or unknown fields: 422 too, the field named as serde finds it.
        (json!({"url": url}), vec![]),
        (
            json!({"url": url, "events": ["*"], "secret": "mine"}),
            vec![],
        ),
    ] {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed");
        assert_eq!(
            fields(&answer).len().max(1),
            expected.len().max(1),
            "{body}: {answer}"
        );
        if !expected.is_empty() {
            assert_eq!(fields(&answer), expected, "{body}: {answer}");
        }
    }
    // SSRF rules apply where private networks are not allowed (the API's own check).
    let problems = herald_domain::status_events::WebhookSubscriptionRequest {
        url: "https://169.254.169.254/latest".into(),
        events: vec!["*".into()],
    }
    .validate(false)
    .unwrap_err();
    assert_eq!(problems[0].field, "url");

    let (status, created) =
        post(json!({"url": url, "events": ["delivery.sent", "delivery.sent", "*"]})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["events"], json!(["delivery.sent", "*"]));
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let listed: Value = stack
        .client
        .get(format!("{}/v1/webhooks", stack.api))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], created["id"]);
    assert!(
        !listed.to_string().contains(secret),
        "secrets are never listed"
    );

    // Bounded per tenant.
    let limit = herald_domain::status_events::MAX_SUBSCRIPTIONS_PER_TENANT;
    for _ in 1..limit {
        assert_eq!(post(json!({"url": url, "events": ["*"]})).await.0, 201);
    }
    // A valid request the tenant's state refuses: 409, not a validation error.
    let (status, refused) = post(json!({"url": url, "events": ["*"]})).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "limit_reached", "{refused}");
    assert_eq!(refused["error"]["details"]["limit"], limit, "{refused}");

    // Deleted once; another tenant cannot delete it; then it is unknown.
    let id = created["id"].as_str().unwrap();
    let other_key = herald_api::cli::create_tenant(
        &stack.settings,
        &format!("other-{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .unwrap();
    let delete = |key: String| {
        let stack = &stack;
        async move {
            stack
                .client
                .delete(format!("{}/v1/webhooks/{id}", stack.api))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(delete(other_key).await, 404);
    assert_eq!(delete(stack.api_key.clone()).await, 204);
    assert_eq!(delete(stack.api_key.clone()).await, 404);
    assert_eq!(post(json!({"url": url, "events": ["*"]})).await.0, 201);
}

/// Another tenant's `hanging_subscriptions` `*` subscriptions to `/webhooks/hanging-{n}` of a
/// simulator of its own that answers after 30 s (every call times out: 1 s in tests), beside the
/// stack tenant's `delivery.sent` subscription to `/webhooks/steady` of the stack's simulator, and
/// the stack tenant's user `u1`.
struct HangingBesideSteady {
    other_key: String,
    hanging_simulator: String,
    simulator: String,
}

async fn hanging_subscribers_beside_a_steady_one(
    stack: &Stack,
    hanging_subscriptions: usize,
) -> HangingBesideSteady {
    let hanging_simulator = start_simulator().await.http;
    let response = stack
        .client
        .put(format!("{hanging_simulator}/_sim/config/webhook"))
        .json(&json!({"latency_ms": 30000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let other_key = herald_api::cli::create_tenant(
        &stack.settings,
        &format!("other-{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .unwrap();
    for index in 0..hanging_subscriptions {
        let endpoint = format!("hanging-{index}");
        subscribe_endpoint(stack, &other_key, &hanging_simulator, &endpoint, &["*"]).await;
    }
    let simulator = stack.simulator.clone();
    subscribe_endpoint(
        stack,
        &stack.api_key,
        &simulator,
        "steady",
        &["delivery.sent"],
    )
    .await;
    stack
        .put_user("u1", json!({"email": "u1@example.com"}))
        .await;
    HangingBesideSteady {
        other_key,
        hanging_simulator,
        simulator,
    }
}

/// `count` notifications of the tenant of `api_key` to a recipient it does not have: each is
/// skipped at once, an event for every `*` subscription of the tenant.
async fn events_for_nobody(stack: &Stack, api_key: &str, count: usize) {
    let items: Vec<Value> = (0..count).map(|_| alert(&["nobody"], &["email"])).collect();
    let response = stack
        .client
        .post(format!("{}/v1/notifications/batch", stack.api))
        .bearer_auth(api_key)
        .json(&json!({ "notifications": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// Calls the hanging simulator received (counted on arrival, before its 30 s answer).
async fn hanging_calls(stack: &Stack, hanging_simulator: &str) -> u64 {
    webhook_stats(stack, hanging_simulator).await["requests"]
        .as_u64()
        .unwrap()
}

async fn wait_for_hanging_calls(stack: &Stack, hanging_simulator: &str, at_least: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while hanging_calls(stack, hanging_simulator).await < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hanging endpoint is not called"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_hanging_subscriber_holds_only_its_own_slots_and_other_tenants_events_keep_going() {
    let stack = start_stack_with(None, None, |settings| {
        // Few slots: a hanging endpoint that could take them all would stall everyone.
        settings.status_events.max_in_flight = 4;
        settings.status_events.max_in_flight_per_subscription = 2;
    })
    .await;
    let HangingBesideSteady {
        other_key,
        hanging_simulator,
        simulator,
    } = hanging_subscribers_beside_a_steady_one(&stack, 1).await;
    let (stop, worker) = start_worker(&stack.settings).await;

    // The other tenant's backlog: 20 notifications to a recipient it does not have (skipped), so
    // 20 events for the hanging endpoint, retried over and over.
    events_for_nobody(&stack, &other_key, 20).await;
    wait_for_hanging_calls(&stack, &hanging_simulator, 8).await;

    // Now this tenant's events: they pass the hanging backlog at once.
    for _ in 0..10 {
        stack.notify(alert(&["u1"], &["email"])).await;
    }
    let steady = wait_for_events(&stack, &simulator, "steady", 10, Duration::from_secs(4)).await;
    assert_eq!(steady.len(), 10);
    let hanging_sends = stack
        .count(
            "SELECT count(*) FROM webhook_event_sends s JOIN webhook_subscriptions w \
             ON w.id = s.subscription_id WHERE w.url LIKE '%/webhooks/hanging-%'",
        )
        .await;
    assert_eq!(
        hanging_sends, 20,
        "the hanging subscriber's events wait, durably"
    );

    stop.cancel();
    worker.await.unwrap().unwrap();
}

/// One tenant's subscriptions together hold at most `max_in_flight_per_tenant` of the dispatcher:
/// three subscriptions to a tarpit, each within its own bound, would otherwise hold every slot, and
/// every other tenant's events would wait for their timeouts.
#[tokio::test]
async fn a_tenants_subscriptions_to_a_tarpit_hold_only_its_share_of_the_dispatcher() {
    let stack = start_stack_with(None, None, |settings| {
        settings.status_events.max_in_flight = 6;
        settings.status_events.max_in_flight_per_subscription = 2;
        settings.status_events.max_in_flight_per_tenant = 2;
        // Longer than the test waits for the steady subscriber: a slot taken by the tarpit stays
        // taken until then.
        settings.status_events.timeout_ms = 8_000;
    })
    .await;
    let HangingBesideSteady {
        other_key: attacker_key,
        hanging_simulator,
        simulator,
    } = hanging_subscribers_beside_a_steady_one(&stack, 3).await;
    let (stop, worker) = start_worker(&stack.settings).await;

    // Twenty events for each of the attacker's three subscriptions (skipped deliveries: the
    // recipient does not exist).
    events_for_nobody(&stack, &attacker_key, 20).await;
    wait_for_hanging_calls(&stack, &hanging_simulator, 2).await;

    for _ in 0..10 {
        stack.notify(alert(&["u1"], &["email"])).await;
    }
    let steady = wait_for_events(&stack, &simulator, "steady", 10, Duration::from_secs(4)).await;
    assert_eq!(steady.len(), 10);
    // No call to the tarpit has ended yet (each waits for its timeout): every call it received is
    // one held at once, and the attacker's tenant held no more than its share.
    let tarpit_calls = hanging_calls(&stack, &hanging_simulator).await;
    assert_eq!(
        tarpit_calls, 2,
        "the attacker's three subscriptions held {tarpit_calls} slots"
    );

    stop.cancel();
    worker.await.unwrap().unwrap();
}

/// A dispatcher whose lease ran out while its subscriber hung learns of the failure after another
/// dispatcher claimed the send again: recording it must neither clear the new claim's lease (a third
/// dispatcher would send it too) nor park the retry under way.
#[tokio::test]
async fn a_late_failure_of_an_expired_claim_leaves_the_new_claim_alone() {
    use herald_store::{webhook_event_sends, webhook_subscriptions};
    let stack = start_stack(None).await;
    let webhook_subscriptions::Created::Created(subscription) = webhook_subscriptions::create(
        &stack.database,
        stack.tenant_id,
        "https://hooks.example.com/herald",
        &["*".to_owned()],
        "whsec_test",
        20,
    )
    .await
    .unwrap() else {
        panic!("one subscription is within the limit");
    };
    let event_id = uuid::Uuid::now_v7();
    webhook_event_sends::enqueue(
        &stack.database,
        &[webhook_event_sends::NewSend {
            subscription_id: subscription.id,
            event_id,
            payload: "{}".to_owned(),
        }],
        10_000,
    )
    .await
    .unwrap();
    let claim = |owner| {
        let database = stack.database.clone();
        async move {
            let rooms = webhook_event_sends::ClaimRooms {
                per_subscription: 8,
                busy_subscriptions: &[],
                subscription_rooms: &[],
                per_tenant: 32,
                busy_tenants: &[],
                tenant_rooms: &[],
            };
            webhook_event_sends::claim_due(&database, owner, Duration::from_millis(200), 10, rooms)
                .await
                .unwrap()
        }
    };
    let (late, current) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let first = claim(late).await;
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = claim(current).await;
    assert_eq!(second.len(), 1, "the expired claim is claimed again");

    webhook_event_sends::record_failure(
        &stack.database,
        subscription.id,
        event_id,
        first[0].attempts,
        webhook_event_sends::Unsent::Park,
        "timed out",
    )
    .await
    .unwrap();
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM webhook_event_sends WHERE event_id = '{event_id}' \
                 AND lease_owner = '{current}' AND parked_at IS NULL AND attempts = 2"
            ))
            .await,
        1,
        "the current claim keeps its lease and its retry"
    );
    assert!(
        claim(uuid::Uuid::new_v4()).await.is_empty(),
        "nobody else can claim it"
    );
}

/// A subscriber that never answers cannot grow its backlog without bound (issue 14, hole 4): the
/// backlog stops at `max_pending_per_subscription`, the events beyond it are dropped and counted
/// where the tenant sees them (`GET /v1/webhooks`), another tenant's subscriber keeps receiving,
/// and the dispatcher's claim reads each backlog through its index, never sorting every due send.
#[tokio::test]
async fn a_subscription_to_a_tarpit_keeps_a_bounded_backlog_and_shows_what_it_dropped() {
    const BOUND: u64 = 25;
    const EVENTS: u64 = 60;
    let stack = start_stack_with(None, None, |settings| {
        settings.status_events.max_pending_per_subscription = BOUND;
    })
    .await;
    let HangingBesideSteady {
        other_key: attacker_key,
        simulator,
        ..
    } = hanging_subscribers_beside_a_steady_one(&stack, 1).await;
    let (stop, worker) = start_worker(&stack.settings).await;

    // One event each (a skipped delivery: the recipient does not exist) for the tarpit.
    events_for_nobody(&stack, &attacker_key, EVENTS as usize).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let subscription = loop {
        let listed: Value = stack
            .client
            .get(format!("{}/v1/webhooks", stack.api))
            .bearer_auth(&attacker_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let subscription = listed["data"][0].clone();
        if subscription["dropped_events"].as_u64() == Some(EVENTS - BOUND) {
            break subscription;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped events are not counted: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(subscription["pending_events"], BOUND, "{subscription}");
    assert!(
        subscription["backlog_full_since"].is_string(),
        "{subscription}"
    );
    let stored = stack
        .count(
            "SELECT count(*) FROM webhook_event_sends s JOIN webhook_subscriptions w \
             ON w.id = s.subscription_id WHERE w.url LIKE '%/webhooks/hanging-%'",
        )
        .await;
    assert_eq!(stored, BOUND as i64, "the backlog stops at its bound");

    // Another tenant's subscriber is not held back.
    for _ in 0..5 {
        stack.notify(alert(&["u1"], &["email"])).await;
    }
    let steady = wait_for_events(&stack, &simulator, "steady", 5, Duration::from_secs(10)).await;
    assert_eq!(steady.len(), 5);

    stop.cancel();
    worker.await.unwrap().unwrap();

    // A claim beside a backlog of a hundred thousand (as the table would hold without the bound,
    // or with many subscriptions), run and rolled back: no step of it reads more than a few rows
    // (each subscription's oldest due sends, from the index), never the whole backlog.
    execute(
        &stack.database,
        "INSERT INTO webhook_event_sends (subscription_id, event_id, payload) \
         SELECT w.id, gen_random_uuid(), '{}' FROM webhook_subscriptions w, \
         generate_series(1, 100000) WHERE w.url LIKE '%/webhooks/hanging-%'",
    )
    .await;
    execute(&stack.database, "ANALYZE webhook_event_sends").await;
    execute(&stack.database, "ANALYZE webhook_subscriptions").await;
    let transaction = stack.database.connection().begin().await.unwrap();
    let plan: serde_json::Value = transaction
        .query_one(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            format!(
                "EXPLAIN (ANALYZE, FORMAT JSON) {}",
                herald_store::webhook_event_sends::CLAIM_DUE
            ),
            [
                sea_orm::Value::from(uuid::Uuid::new_v4()),
                sea_orm::Value::from(60_000_i64),
                sea_orm::Value::from(256_i64),
                sea_orm::Value::from(8_i64),
                sea_orm::Value::from(Vec::<uuid::Uuid>::new()),
                sea_orm::Value::from(Vec::<i32>::new()),
                sea_orm::Value::from(Vec::<uuid::Uuid>::new()),
                sea_orm::Value::from(Vec::<i32>::new()),
                sea_orm::Value::from(32_i64),
            ],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    transaction.rollback().await.unwrap();
    let most_rows_read = most_rows_of_any_step(&plan[0]["Plan"]);
    assert!(
        most_rows_read <= 100,
        "a step of the claim read {most_rows_read} rows of a backlog of 100,000:\n{plan:#}"
    );
}

/// The most rows any step of an `EXPLAIN (ANALYZE, FORMAT JSON)` plan produced or removed by a
/// filter, over all its loops.
fn most_rows_of_any_step(node: &Value) -> u64 {
    let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
    let rows = node["Actual Rows"].as_f64().unwrap_or(0.0)
        + node["Rows Removed by Filter"].as_f64().unwrap_or(0.0);
    let own = (rows * loops).round() as u64;
    node["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(most_rows_of_any_step)
        .fold(own, u64::max)
}
