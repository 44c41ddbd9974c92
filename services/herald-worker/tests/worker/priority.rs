//! Priority lanes (docs/DESIGN.md, "Priority lanes"): a `high` notification is never queued behind
//! a backlog of `low` ones — not in Kafka, not in admission, not in the lane, not in
//! `delivery_queue`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_domain::{Channel, ProviderId};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const LOW_PRIORITY_BACKLOG: usize = 20_000;
const RECIPIENTS: usize = 200;
/// SendGrid answers this slowly: with `SENDGRID_IN_FLIGHT` calls at once the lane sends about 160
/// emails a second, so the backlog takes about two minutes to send.
const SENDGRID_LATENCY_MS: u64 = 100;
const SENDGRID_IN_FLIGHT: usize = 16;

/// When the simulator received the email whose reference is `delivery_id`, if it has.
async fn received_at(stack: &Stack, delivery_id: Uuid) -> Option<DateTime<Utc>> {
    let received: Value = stack
        .client
        .get(format!(
            "{}/_sim/received?provider=sendgrid&reference={delivery_id}&limit=1",
            stack.simulator
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = received["messages"].as_array()?.first()?.clone();
    Some(message["received_at"].as_str()?.parse().unwrap())
}

async fn emails_accepted(stack: &Stack) -> u64 {
    stack.simulator_stats().await["sendgrid"]["accepted"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_high_priority_notification_overtakes_a_backlog_of_twenty_thousand_low_ones() {
    let stack = start_stack_with(None, None, |settings| {
        settings.providers.sendgrid.max_in_flight = SENDGRID_IN_FLIGHT;
        settings.providers.sendgrid.max_held = 512;
    })
    .await;
    stack
        .configure_provider("sendgrid", json!({"latency_ms": SENDGRID_LATENCY_MS}))
        .await;
    stack.insert_users(RECIPIENTS).await;
    let (_stop_worker, _worker) = start_worker(&stack.settings).await;

    let batch_size = stack.settings.ingest.max_batch_items;
    let mut posted = 0;
    while posted < LOW_PRIORITY_BACKLOG {
        let count = batch_size.min(LOW_PRIORITY_BACKLOG - posted);
        let lows: Vec<Value> = (posted..posted + count)
            .map(|index| {
                let mut low = alert(&[&format!("user-{}", index % RECIPIENTS)], &["email"]);
                low["priority"] = json!("low");
                low
            })
            .collect();
        stack.notify_batch(lows).await;
        posted += count;
    }
    // The whole backlog is admitted: the lane is full of low-priority work and the rest waits in
    // `delivery_queue`, ahead of anything accepted later.
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries",
            LOW_PRIORITY_BACKLOG as i64,
            Duration::from_secs(60),
        )
        .await;
    let queued = stack.count("SELECT count(*) FROM delivery_queue").await;
    assert!(
        queued > LOW_PRIORITY_BACKLOG as i64 / 2,
        "the backlog waits in delivery_queue ({queued} entries)"
    );

    let mut high = alert(&["user-7"], &["email"]);
    high["priority"] = json!("high");
    let notification_id: Uuid = stack.notify(high).await.parse().unwrap();
    let accepted_at = Utc::now();
    let delivery_id = herald_worker::work::delivery_id(notification_id, "user-7", Channel::Email);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let received_at = loop {
        if let Some(received_at) = received_at(&stack, delivery_id).await {
            break received_at;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the high-priority email was not sent within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let low_sent = emails_accepted(&stack).await;
    let waited = (received_at - accepted_at).to_std().unwrap_or_default();
    println!(
        "high priority: at the provider {} ms after its 202; {low_sent} of {LOW_PRIORITY_BACKLOG} low ones sent",
        waited.as_millis()
    );
    assert!(
        waited < Duration::from_secs(1),
        "the high-priority email reached the provider {waited:?} after its 202"
    );
    // It really jumped the queue: most of the backlog accepted before it was still unsent.
    assert!(
        low_sent < LOW_PRIORITY_BACKLOG as u64 / 2,
        "{low_sent} low-priority emails were sent first: no backlog to jump"
    );
}

/// The pump's claim: `high` entries on their own (into the room kept for them), then `normal`
/// before `low`, whatever their due times.
#[tokio::test]
async fn queued_entries_are_claimed_highest_priority_first_whatever_their_due_times() {
    use herald_store::deliveries::{claim_queued, PriorityBand, TenantRoom};

    let stack = start_stack(None).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let mut ids = std::collections::HashMap::new();
    // The low ones are due first, the high one last.
    for (priority, waited_seconds) in [("low", 30), ("low", 20), ("normal", 10), ("high", 1)] {
        let mut body = alert(&["u1"], &["sms"]);
        body["priority"] = json!(priority);
        let id: Uuid = stack.notify(body).await.parse().unwrap();
        execute(
            &stack.database,
            &format!(
                "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status) \
                 VALUES ('{id}', '{id}', '{tenant}', 'u1', 'sms', 'twilio', 'queued'); \
                 INSERT INTO delivery_queue (delivery_id, notification_id, provider, tenant_id, priority, due_at) \
                 VALUES ('{id}', '{id}', 'twilio', '{tenant}', '{priority}', now() - interval '{waited_seconds} seconds')",
                tenant = stack.tenant_id
            ),
        )
        .await;
        ids.entry(priority).or_insert_with(Vec::new).push(id);
    }
    let session = Uuid::now_v7();
    let claim = |band, limit| {
        let database = stack.database.clone();
        async move {
            claim_queued(
                &database,
                session,
                ProviderId::Twilio,
                band,
                limit,
                Uuid::now_v7(),
                &TenantRoom::UNBOUNDED,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|claimed| claimed.id)
            .collect::<Vec<Uuid>>()
        }
    };

    assert_eq!(claim(PriorityBand::ORDINARY, 1).await, ids["normal"]);
    assert_eq!(claim(PriorityBand::HIGH, 10).await, ids["high"]);
    assert!(claim(PriorityBand::HIGH, 10).await.is_empty());
    let mut lows = claim(PriorityBand::ORDINARY, 10).await;
    lows.sort();
    let mut expected = ids["low"].clone();
    expected.sort();
    assert_eq!(lows, expected);
    assert_eq!(stack.count("SELECT count(*) FROM delivery_queue").await, 0);
}
