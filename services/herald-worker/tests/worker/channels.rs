//! The chat and webhook channels end to end: the API takes a user's `channel_data`, the worker
//! delivers through each provider in its real API's shape (checked by the simulator, which
//! verifies webhook signatures), permanent refusals fail at once with the provider's reason, a
//! 429 storm only slows delivery down, and recipients' URLs are guarded against SSRF.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const CHAT_CHANNELS: [&str; 5] = ["slack", "discord", "telegram", "webhook", "pushover"];
/// A well-formed Pushover user key the simulator delivers to.
const PUSHOVER_USER_KEY: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

/// Registers the secret the simulator verifies `/webhooks/{endpoint}` requests with.
async fn register_webhook_endpoint(stack: &Stack, endpoint: &str) {
    let response = stack
        .client
        .put(format!(
            "{}/_sim/webhook-endpoints/{endpoint}",
            stack.simulator
        ))
        .json(&json!({"secret": WEBHOOK_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Contacts on every chat channel, all at the simulator; `slack_secret` and `telegram_chat` pick
/// the simulator's behaviour (`invalid` and `-1` are refused for good).
fn channel_data(stack: &Stack, slack_secret: &str, telegram_chat: i64) -> Value {
    json!({
        "slack": {"webhook_url": format!("{}/slack/services/T0001/B0001/{slack_secret}", stack.simulator)},
        "discord": {"webhook_url": format!("{}/discord/api/webhooks/1001/token-1", stack.simulator)},
        "telegram": {"chat_id": telegram_chat},
        "webhook": {"url": format!("{}/webhooks/ops", stack.simulator), "secret": WEBHOOK_SECRET},
        "pushover": {"user_key": PUSHOVER_USER_KEY, "device": "iphone"},
    })
}

/// A stack with the simulator's `ops` webhook endpoint registered and a worker running, and user
/// `u1` reachable on every chat channel (`slack_secret` and `telegram_chat` as in
/// [`channel_data`]).
async fn stack_with_a_chat_user(
    slack_secret: &str,
    telegram_chat: i64,
) -> (
    Stack,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let stack = start_stack(None).await;
    register_webhook_endpoint(&stack, "ops").await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .put_user(
            "u1",
            json!({"channel_data": channel_data(&stack, slack_secret, telegram_chat)}),
        )
        .await;
    (stack, stop_worker, worker)
}

fn deliveries_by_channel(view: &Value) -> Vec<(String, Value)> {
    let mut deliveries: Vec<(String, Value)> = view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| {
            (
                delivery["channel"].as_str().unwrap().to_owned(),
                delivery.clone(),
            )
        })
        .collect();
    deliveries.sort_by(|left, right| left.0.cmp(&right.0));
    deliveries
}

#[tokio::test]
async fn every_chat_channel_is_delivered_in_its_providers_shape() {
    let (stack, stop_worker, worker) = stack_with_a_chat_user("secret-1", 4242).await;
    let user = stack.get_user("u1").await;
    assert_eq!(user["channel_data"]["webhook"]["has_secret"], true);
    assert!(
        !user.to_string().contains("whsec_"),
        "the signing secret is never given back: {user}"
    );

    let id = stack.notify(alert(&["u1"], &CHAT_CHANNELS)).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let deliveries = deliveries_by_channel(&view);
    let channels: Vec<&str> = deliveries
        .iter()
        .map(|(channel, _)| channel.as_str())
        .collect();
    assert_eq!(
        channels,
        ["discord", "pushover", "slack", "telegram", "webhook"]
    );
    for (channel, delivery) in &deliveries {
        assert_eq!(delivery["status"], "sent", "{delivery}");
        assert_eq!(delivery["provider"], channel.as_str(), "{delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        let received = stack.received(channel).await;
        let messages = received["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{channel}: {received}");
        assert_eq!(
            messages[0]["reference"], delivery["id"],
            "{channel}: the delivery's reference reaches the provider"
        );
        let body = messages[0]["body"].as_str().unwrap();
        assert!(
            body.contains("Pressure 7 on press-4"),
            "{channel}: rendered content, got {body}"
        );
    }
    // Discord (with `wait=true`), Telegram and Pushover give a message id back.
    for channel in ["discord", "telegram", "pushover"] {
        let (_, delivery) = deliveries.iter().find(|(name, _)| name == channel).unwrap();
        assert!(
            delivery["provider_message_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{delivery}"
        );
    }
    // Pushover's form: the user's key and device, the subject as the title.
    let pushover = stack.received("pushover").await;
    let message = &pushover["messages"][0];
    assert_eq!(message["recipient"], PUSHOVER_USER_KEY, "{pushover}");
    assert_eq!(message["device"], "iphone", "{pushover}");
    assert_eq!(message["subject"], "Pressure alert", "{pushover}");
    let stats = stack.simulator_stats().await;
    assert_eq!(
        stats["webhook"]["rejected"], 0,
        "every signature verified: {stats}"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// A tenant's `data` holding the extremes of a double, which PostgreSQL writes back in full (the
/// largest as 309 digits): the worker reads them exactly (serde_json's `float_roundtrip`), and the
/// delivery goes out rather than failing to decode, again and again.
#[tokio::test]
async fn extreme_numbers_in_data_do_not_keep_a_delivery_from_going_out() {
    let (stack, stop_worker, worker) = stack_with_a_chat_user("secret-1", 4242).await;
    let mut notification = alert(&["u1"], &["webhook"]);
    notification["data"]["largest"] = json!(f64::MAX);
    notification["data"]["most_negative"] = json!(f64::MIN);
    notification["data"]["smallest"] = json!(5e-324);
    let id = stack.notify(notification).await;
    // The worker's part, seen in the database and at the provider, apart from the API's reads.
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status = 'sent'",
            1,
            Duration::from_secs(30),
        )
        .await;
    let received = stack.received("webhook").await;
    assert_eq!(
        received["messages"].as_array().unwrap().len(),
        1,
        "{received}"
    );
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    assert_eq!(view["data"]["largest"], json!(f64::MAX), "{view}");

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_revoked_webhook_or_a_blocked_bot_fails_at_once_with_the_providers_reason() {
    let (stack, stop_worker, worker) = stack_with_a_chat_user("invalid", -1).await;

    let id = stack.notify(alert(&["u1"], &["slack", "telegram"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "failed", "{view}");
    for (channel, delivery) in deliveries_by_channel(&view) {
        assert_eq!(delivery["status"], "failed", "{delivery}");
        assert_eq!(
            delivery["attempts"], 1,
            "{channel}: not retried: {delivery}"
        );
        let error = delivery["last_error"].as_str().unwrap();
        let reason = if channel == "slack" {
            "no_service"
        } else {
            "bot was blocked by the user"
        };
        assert!(error.contains(reason), "{channel}: {error}");
    }

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_storm_of_429s_slows_delivery_down_and_fails_nothing() {
    let stack = start_stack(None).await;
    for provider in ["slack", "discord", "telegram"] {
        stack
            .configure_provider(
                provider,
                json!({"rate_limit_rate": 0.5, "retry_after": "1"}),
            )
            .await;
    }
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    for index in 0..5 {
        stack
            .put_user(
                &format!("u{index}"),
                json!({"channel_data": channel_data(&stack, "secret-1", 4242 + index)}),
            )
            .await;
    }
    let users: Vec<String> = (0..5).map(|index| format!("u{index}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let id = stack
        .notify(alert(&users, &["slack", "discord", "telegram"]))
        .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let stats = stack.simulator_stats().await;
    let rate_limited: u64 = ["slack", "discord", "telegram"]
        .iter()
        .map(|provider| stats[provider]["rate_limited"].as_u64().unwrap())
        .sum();
    assert!(rate_limited > 0, "the storm happened: {stats}");
    for provider in ["slack", "discord", "telegram"] {
        assert_eq!(stats[provider]["duplicates"], 0, "{provider}: {stats}");
    }

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// The worker's own guard: a URL that reached the database without the API's check (an older
/// version, a manual fix) and points at loopback is refused before any connection, for good.
#[tokio::test]
async fn the_worker_refuses_a_recipients_url_that_leads_to_a_private_network() {
    let mut stack = start_stack(None).await;
    stack.settings.outbound.allow_private_networks = false;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    herald_testing::execute(
        &stack.database,
        &format!(
            "INSERT INTO users (tenant_id, id, channel_data) VALUES ('{}', 'u1', \
             '{{\"slack\": {{\"webhook_url\": \"https://127.0.0.1:1/services/T/B/x\"}}, \
               \"discord\": {{\"webhook_url\": \"https://localhost:1/api/webhooks/1/t\"}}}}')",
            stack.tenant_id
        ),
    )
    .await;

    let id = stack.notify(alert(&["u1"], &["slack", "discord"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "failed", "{view}");
    for (channel, delivery) in deliveries_by_channel(&view) {
        assert_eq!(delivery["attempts"], 1, "{channel}: {delivery}");
        let error = delivery["last_error"].as_str().unwrap();
        assert!(error.contains("refused"), "{channel}: {error}");
    }
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["slack"]["requests"], 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
