//! Group fan-out in the worker (docs/DESIGN.md, "Groups: fan-out in the worker"): each member as
//! of acceptance gets its deliveries once, however many of the notification's groups name it, even
//! when the worker expanding it dies between planning a page and producing it; and one tenant's
//! huge group takes turns with another tenant's small one.

use std::time::Duration;

use herald_store::group_expansions::{self, Planned};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

async fn send(
    stack: &Stack,
    api_key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = stack
        .client
        .request(method, format!("{}{path}", stack.api))
        .bearer_auth(api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Creates `group_id` for the tenant of `api_key` with `members`, a page (`groups.page_size`) at a
/// time.
async fn group_with(stack: &Stack, api_key: &str, group_id: &str, members: &[String]) {
    let path = format!("/v1/groups/{group_id}");
    send(stack, api_key, reqwest::Method::PUT, &path, json!({})).await;
    for page in members.chunks(stack.settings.groups.page_size) {
        let body = json!({ "user_ids": page });
        send(
            stack,
            api_key,
            reqwest::Method::POST,
            &format!("{path}/members"),
            body,
        )
        .await;
    }
}

fn users(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("user-{index}")).collect()
}

/// An SMS to `group_ids` and `user_ids`.
fn to_groups(group_ids: &[&str], user_ids: &[&str]) -> Value {
    let mut body = alert(user_ids, &["sms"]);
    body["group_ids"] = json!(group_ids);
    body
}

/// The recipients the notification's deliveries went to, sorted, each as often as it has one.
async fn delivered_to(stack: &Stack, notification_id: &str) -> Vec<String> {
    #[derive(sea_orm::FromQueryResult)]
    struct Recipient {
        user_id: String,
    }
    use sea_orm::{DatabaseBackend, FromQueryResult, Statement};
    Recipient::find_by_statement(Statement::from_string(
        DatabaseBackend::Postgres,
        format!(
            "SELECT user_id FROM deliveries WHERE notification_id = '{notification_id}' \
             ORDER BY user_id"
        ),
    ))
    .all(stack.database.connection())
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.user_id)
    .collect()
}

fn sorted(mut users: Vec<String>) -> Vec<String> {
    users.sort();
    users
}

/// A provider call that timed out is sent again with the same reference (the in-doubt set): the
/// simulator answers such a repeat with the first result and does not deliver it again, as
/// Twilio's idempotency would, so `messages` counts each member once even on a loaded machine.
async fn honour_references(stack: &Stack) {
    stack
        .configure_provider("twilio", json!({"honour_idempotency_reference": true}))
        .await;
}

#[tokio::test]
async fn every_member_of_overlapping_groups_is_delivered_once_and_counted_once() {
    let stack = start_stack_with(None, None, |settings| {
        settings.groups.records_per_second = 100_000;
    })
    .await;
    stack.insert_users(2500).await;
    honour_references(&stack).await;
    group_with(&stack, &stack.api_key, "everyone", &users(0..2500)).await;
    group_with(&stack, &stack.api_key, "first-hundred", &users(0..100)).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    // user-5 is named, and in both groups: still one recipient.
    let id = stack
        .notify(to_groups(&["everyone", "first-hundred"], &["user-5"]))
        .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(180)).await;
    assert_eq!(view["status"], "delivered", "{}", view["delivery_summary"]);
    let summary = &view["delivery_summary"];
    assert_eq!(
        summary["expected"], 2500,
        "one delivery per distinct recipient"
    );
    assert_eq!(summary["sent"], 2500);
    assert_eq!(summary["expansions_pending"], 0);
    assert_eq!(delivered_to(&stack, &id).await, sorted(users(0..2500)));
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 2500, "{stats}");
    assert_eq!(stats["twilio"]["duplicates"], 0, "{stats}");
    assert_eq!(
        stack.count("SELECT count(*) FROM group_expansions").await,
        0
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_group_means_its_members_when_the_notification_was_accepted() {
    let stack = start_stack(None).await;
    stack.insert_users(10).await;
    let key = stack.api_key.clone();
    group_with(&stack, &key, "shift", &users(0..2)).await;
    let before_changes = stack.notify(to_groups(&["shift"], &[])).await;

    // After its 202: user-1 leaves, user-2 joins.
    let members = "/v1/groups/shift/members";
    send(
        &stack,
        &key,
        reqwest::Method::DELETE,
        members,
        json!({"user_ids": ["user-1"]}),
    )
    .await;
    send(
        &stack,
        &key,
        reqwest::Method::POST,
        members,
        json!({"user_ids": ["user-2"]}),
    )
    .await;
    let after_changes = stack.notify(to_groups(&["shift"], &[])).await;

    // The group is deleted and its id names a new group: the earlier notifications keep theirs.
    let response = stack
        .client
        .delete(format!("{}/v1/groups/shift", stack.api))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    group_with(&stack, &key, "shift", &users(3..4)).await;
    let new_group = stack.notify(to_groups(&["shift"], &[])).await;

    // Nothing is expanded before every change is made.
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    for id in [&before_changes, &after_changes, &new_group] {
        stack.wait_until_final(id, Duration::from_secs(60)).await;
    }
    assert_eq!(
        delivered_to(&stack, &before_changes).await,
        ["user-0", "user-1"]
    );
    assert_eq!(
        delivered_to(&stack, &after_changes).await,
        ["user-0", "user-2"]
    );
    assert_eq!(delivered_to(&stack, &new_group).await, ["user-3"]);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_worker_that_dies_between_planning_and_producing_a_page_is_taken_over_without_a_duplicate_send(
) {
    let stack = start_stack_with(None, None, |settings| {
        settings.groups.page_size = 500;
        settings.groups.records_per_second = 100_000;
    })
    .await;
    stack.insert_users(1200).await;
    honour_references(&stack).await;
    group_with(&stack, &stack.api_key, "plant", &users(0..1200)).await;
    let id = stack.notify(to_groups(&["plant"], &[])).await;

    // A worker session that claims the expansion and plans its first page, then dies: its page is
    // counted and recorded but only half of it produced.
    let dead_session = herald_store::sessions::register(&stack.database, "doomed")
        .await
        .unwrap();
    let lease = Duration::from_millis(stack.settings.worker.lease_ms);
    let claimed = group_expansions::claim(&stack.database, dead_session, lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let planned = group_expansions::plan_page(&stack.database, dead_session, claimed[0].key(), 500)
        .await
        .unwrap();
    let Planned::Page {
        recipients,
        planned_all: false,
    } = planned
    else {
        panic!("a first page of 500 of 1200: {planned:?}");
    };
    assert_eq!(recipients.len(), 500);
    let producer = herald_kafka::create_producer(
        &stack.settings.kafka,
        "doomed-worker",
        herald_kafka::ProducerRole::Worker,
    )
    .unwrap();
    let tenant_id = stack.tenant_id;
    let notification_id: Uuid = id.parse().unwrap();
    for user_id in &recipients[..250] {
        let envelope = herald_domain::NotificationEnvelope::new(
            notification_id,
            tenant_id,
            user_id,
            claimed[0].priority,
            claimed[0].accepted_at,
        );
        let key = herald_domain::NotificationEnvelope::partition_key(tenant_id, user_id);
        let payload = envelope.encode();
        let record = rdkafka::producer::FutureRecord::to(&stack.settings.kafka.topic)
            .key(&key)
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }
    execute(
        &stack.database,
        &format!(
            "UPDATE worker_sessions SET heartbeat_at = now() - interval '1 hour' \
             WHERE id = '{dead_session}'"
        ),
    )
    .await;

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(120)).await;
    assert_eq!(view["status"], "delivered", "{}", view["delivery_summary"]);
    assert_eq!(
        view["delivery_summary"]["expected"], 1200,
        "the first page counted once"
    );
    assert_eq!(delivered_to(&stack, &id).await, sorted(users(0..1200)));
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 1200, "{stats}");
    assert_eq!(stats["twilio"]["duplicates"], 0, "{stats}");
    // The dead session's late word changes nothing.
    assert!(
        !group_expansions::mark_produced(&stack.database, dead_session, claimed[0].key())
            .await
            .unwrap()
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn one_tenants_huge_group_takes_turns_with_another_tenants_small_one() {
    let stack = start_stack_with(None, None, |settings| {
        settings.groups.max_concurrent_expansions = 1;
        settings.groups.page_size = 500;
        settings.groups.records_per_second = 2000;
    })
    .await;
    // The huge group's members have no contact: their deliveries are skipped at admission, so the
    // test weighs the expansion's turns, not 20,000 provider calls on a loaded machine.
    group_with(&stack, &stack.api_key, "everyone", &users(0..20_000)).await;
    let (other_tenant, other_key) = stack
        .create_other_tenant(&format!("other-{}", Uuid::new_v4().simple()))
        .await;
    execute(
        &stack.database,
        &format!(
            "INSERT INTO users (tenant_id, id, phone) \
             SELECT '{other_tenant}', 'user-' || i, '+1415666' || lpad(i::text, 4, '0') \
             FROM generate_series(0, 9) AS i"
        ),
    )
    .await;
    group_with(&stack, &other_key, "team", &users(0..10)).await;

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let huge = stack.notify(to_groups(&["everyone"], &[])).await;
    // Once the huge group's expansion is running (its first deliveries exist, skipped), the other
    // tenant sends to its small group.
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{huge}'"),
            1,
            Duration::from_secs(60),
        )
        .await;
    let response = stack
        .client
        .post(format!("{}/v1/notifications", stack.api))
        .bearer_auth(&other_key)
        .json(&to_groups(&["team"], &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let small: Value = response.json().await.unwrap();
    let small = small["id"].as_str().unwrap().to_owned();
    stack
        .wait_for_count(
            &format!(
                "SELECT count(*) FROM notification_states \
                 WHERE id = '{small}' AND status = 'delivered'"
            ),
            1,
            Duration::from_secs(60),
        )
        .await;
    let huge_expansions_left = stack
        .count(&format!(
            "SELECT count(*) FROM group_expansions WHERE notification_id = '{huge}'"
        ))
        .await;
    assert_eq!(
        huge_expansions_left, 1,
        "the small group was delivered while the huge one (10 s at 2,000 records/s) was still \
         expanding: it waited for a turn, not for the whole group"
    );
    let view = stack
        .wait_until_final(&huge, Duration::from_secs(180))
        .await;
    assert_eq!(view["delivery_summary"]["expected"], 20_000);
    assert_eq!(view["delivery_summary"]["skipped"], 20_000);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_cancelled_notification_stops_expanding_and_its_counters_add_up() {
    let stack = start_stack_with(None, None, |settings| {
        settings.groups.page_size = 500;
        settings.groups.records_per_second = 1000;
    })
    .await;
    stack.insert_users(5000).await;
    honour_references(&stack).await;
    group_with(&stack, &stack.api_key, "everyone", &users(0..5000)).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(to_groups(&["everyone"], &[])).await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}'"),
            1,
            Duration::from_secs(60),
        )
        .await;
    let (status, _) = crate::cancellation::cancel(&stack, &id).await;
    assert_eq!(status, 200);

    let view = crate::cancellation::wait_until_counted(&stack, &id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "cancelled");
    let expected = view["delivery_summary"]["expected"].as_i64().unwrap();
    assert!(
        expected < 5000,
        "the expansion stopped at the cancellation (5 s at 1,000 records/s): {expected} planned"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM group_expansions").await,
        0
    );
    let sent = view["delivery_summary"]["sent"].as_i64().unwrap();
    assert_eq!(stack.simulator_stats().await["twilio"]["messages"], sent);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_scheduled_notification_expands_its_groups_when_it_is_due_not_before() {
    let stack = start_stack(None).await;
    stack.insert_users(3).await;
    group_with(&stack, &stack.api_key, "trio", &users(0..3)).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(4);
    let mut body = to_groups(&["trio"], &[]);
    body["scheduled_for"] = json!(due.to_rfc3339());
    let id = stack.notify(body).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.notification(&id).await["status"], "scheduled");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM notification_recipients WHERE notification_id = '{id}'"
            ))
            .await,
        0,
        "no member planned before the notification is due"
    );
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered");
    assert!(chrono::Utc::now() >= due);
    assert_eq!(delivered_to(&stack, &id).await, sorted(users(0..3)));

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
