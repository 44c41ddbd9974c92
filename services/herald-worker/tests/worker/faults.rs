//! The fault suite: a steady load through a slow, rate-limited and sometimes failing provider while
//! one part of the system fails hard — the API, the worker or the broker killed (-9), PostgreSQL
//! restarted, Redis stopped. Afterwards, from the database and the provider's ledger: every
//! accepted notification is final, nothing is lost, and nothing is sent twice outside the in-doubt
//! set (docs/DESIGN.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::*;

const LOAD_PER_SECOND: u64 = 60;
const LOAD_SECONDS: u64 = 12;

/// Every test's provider: slow with jitter, failing 3% and rate-limiting 2% of valid requests.
async fn troublesome_providers(stack: &Stack, honour_references: bool) {
    for provider in ["sendgrid", "twilio"] {
        stack
            .configure_provider(
                provider,
                json!({
                    "latency_ms": 30, "latency_jitter_ms": 20,
                    "failure_rate": 0.03, "rate_limit_rate": 0.02,
                    "honour_idempotency_reference": honour_references,
                }),
            )
            .await;
    }
}

fn fault_settings(settings: &mut herald_config::Settings) {
    settings.providers.sendgrid.requests_per_second = 150;
    settings.providers.twilio.requests_per_second = 150;
    // Longer than the providers ever take here: a timed-out call is in doubt too (it may have
    // reached the provider), and this suite counts only what the faults cause.
    settings.providers.sendgrid.timeout_ms = 3000;
    settings.providers.twilio.timeout_ms = 3000;
    settings.worker.max_attempts = 8;
    settings.worker.lease_ms = 10_000;
}

/// Posts one notification every `1 / LOAD_PER_SECOND` for `LOAD_SECONDS`, each with its own
/// idempotency key and retried (same key) until accepted, as a careful client would; returns the
/// accepted ids.
fn start_load(api: String, api_key: String) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let mut requests = JoinSet::new();
        let mut ticks = tokio::time::interval(Duration::from_millis(1000 / LOAD_PER_SECOND));
        for index in 0..LOAD_PER_SECOND * LOAD_SECONDS {
            ticks.tick().await;
            let channel = if index % 2 == 0 { "sms" } else { "email" };
            let body = alert(&[&format!("user-{index}")], &[channel]);
            let key = Uuid::new_v4().to_string();
            let (client, api, api_key, accepted) = (
                client.clone(),
                api.clone(),
                api_key.clone(),
                accepted.clone(),
            );
            requests.spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(90);
                while Instant::now() < deadline {
                    let response = client
                        .post(format!("{api}/v1/notifications"))
                        .bearer_auth(&api_key)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    if let Ok(response) = response {
                        if response.status() == 202 {
                            let answer: Value = response.json().await.unwrap();
                            accepted
                                .lock()
                                .await
                                .push(answer["id"].as_str().unwrap().to_owned());
                            return;
                        }
                        assert!(
                            response.status().is_server_error(),
                            "only 5xx may be retried: {}",
                            response.status()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
        }
        while requests.join_next().await.is_some() {}
        let accepted = accepted.lock().await.clone();
        accepted
    })
}

/// Waits until every accepted notification is final, then checks the ledger. With
/// `honour_references` the provider answered repeats without delivering them again: the repeats
/// must then be no more than the in-doubt takeovers; without it, there must be none at all.
async fn assert_nothing_lost_nothing_doubled(
    stack: &Stack,
    accepted: &[String],
    honour_references: bool,
) {
    assert!(
        accepted.len() as u64 >= LOAD_PER_SECOND * LOAD_SECONDS * 9 / 10,
        "the load was accepted: {} of {}",
        accepted.len(),
        LOAD_PER_SECOND * LOAD_SECONDS
    );
    let list: Vec<String> = accepted.iter().map(|id| format!("'{id}'")).collect();
    let list = list.join(",");
    let finished = format!(
        "SELECT count(*) FROM notification_states WHERE id IN ({list}) \
         AND status IN ('delivered', 'partially_delivered', 'failed')"
    );
    stack
        .wait_for_count(&finished, accepted.len() as i64, Duration::from_secs(180))
        .await;
    let sent = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id IN ({list}) AND status = 'sent'"
        ))
        .await;
    let failed = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id IN ({list}) AND status = 'failed'"
        ))
        .await;
    assert_eq!(
        sent + failed,
        accepted.len() as i64,
        "every accepted notification's delivery is final: none lost"
    );
    assert_eq!(failed, 0, "eight attempts get through a 5% fault rate");
    let stats = stack.simulator_stats().await;
    let messages = stats["sendgrid"]["messages"].as_i64().unwrap()
        + stats["twilio"]["messages"].as_i64().unwrap();
    let duplicates = stats["sendgrid"]["duplicates"].as_i64().unwrap()
        + stats["twilio"]["duplicates"].as_i64().unwrap();
    assert_eq!(duplicates, 0, "{stats}");
    assert_eq!(
        messages, sent,
        "each sent delivery reached its provider once: {stats}"
    );
    let replays = stats["sendgrid"]["idempotent_replays"]
        .as_i64()
        .unwrap_or(0)
        + stats["twilio"]["idempotent_replays"].as_i64().unwrap_or(0);
    let in_doubt = stack
        .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'")
        .await;
    if honour_references {
        assert!(
            replays <= in_doubt,
            "repeats {replays} beyond the in-doubt set {in_doubt}"
        );
    } else {
        assert_eq!(in_doubt, 0, "nothing was in doubt");
    }
}

async fn users_for_the_load(stack: &Stack) {
    stack
        .insert_users((LOAD_PER_SECOND * LOAD_SECONDS) as usize)
        .await;
}

#[tokio::test]
async fn the_api_killed_during_a_steady_load_loses_nothing() {
    let mut stack = prepare_stack(None, None, fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack).await;
    let port = free_port();
    stack.api = format!("http://127.0.0.1:{port}");
    let mut api = api_process(&stack.settings, port);
    wait_for_port(port).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone());

    tokio::time::sleep(Duration::from_secs(4)).await;
    api.kill().await.unwrap(); // kill -9, mid-stream: commits, publishes and answers in flight
    api.wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _api = api_process(&stack.settings, port);
    let accepted = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &accepted, false).await;
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_worker_killed_during_a_steady_load_repeats_only_what_was_in_doubt() {
    let stack = start_stack_with(None, None, |settings| {
        fault_settings(settings);
        // Its replacement is the same group member, as a StatefulSet's pod would be.
        settings.worker.instance_id = Some("worker-0".into());
        settings.worker.lease_ms = 6000;
    })
    .await;
    troublesome_providers(&stack, true).await;
    users_for_the_load(&stack).await;
    let mut worker = worker_process(&stack.settings, free_port());
    let load = start_load(stack.api.clone(), stack.api_key.clone());

    tokio::time::sleep(Duration::from_secs(5)).await;
    worker.kill().await.unwrap(); // kill -9, with sends in flight
    worker.wait().await.unwrap();
    let _worker = worker_process(&stack.settings, free_port());
    let accepted = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &accepted, true).await;
}

#[tokio::test]
async fn the_broker_killed_during_a_steady_load_loses_nothing() {
    let mut broker = TansuBroker::start().await;
    let stack = start_stack_with(Some(&broker.brokers()), None, fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone());

    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart().await;
    let accepted = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &accepted, false).await;
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn postgresql_restarted_during_a_steady_load_loses_nothing_and_sends_nothing_twice() {
    let mut postgres = PostgresServer::start().await;
    let servers = Servers {
        postgres_admin_url: postgres.admin_url(),
        redis_url: env("HERALD_TEST_REDIS_URL"),
    };
    let stack = start_stack_with(None, Some(&servers), fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone());

    // Mid-run, with calls in flight whose outcomes arrive while PostgreSQL is away: the record step
    // fails until it is back, and the outcomes are kept, not forgotten.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for provider in ["sendgrid", "twilio"] {
        stack
            .configure_provider(
                provider,
                json!({"latency_ms": 1500, "latency_jitter_ms": 500}),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.stop_immediately().await;
    let stopped_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarting_at = chrono::Utc::now();
    postgres.start_again().await;
    troublesome_providers(&stack, false).await;
    let accepted = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &accepted, false).await;
    let finished_while_away = stack
        .count(&format!(
            "SELECT count(*) FROM delivery_attempts WHERE finished_at BETWEEN '{}' AND '{}'",
            stopped_at.to_rfc3339(),
            restarting_at.to_rfc3339()
        ))
        .await;
    assert!(
        finished_while_away > 0,
        "calls finished while PostgreSQL was away, and their outcomes were kept until it was back"
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_redis_stopped_delivery_goes_on_and_the_cache_recovers() {
    let mut redis = RedisServer::start().await;
    let servers = Servers {
        postgres_admin_url: env("HERALD_TEST_DATABASE_URL"),
        redis_url: redis.url(),
    };
    let stack = start_stack_with(None, Some(&servers), fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone());

    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.kill().await;
    let sent_when_stopped = stack
        .count("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let sent_while_stopped = stack
        .count("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        .await
        - sent_when_stopped;
    assert!(
        sent_while_stopped > 100,
        "only {sent_while_stopped} delivered without Redis"
    );
    redis.start_again().await;
    let accepted = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &accepted, false).await;

    // Back in use: a repeat recipient is served from the cache again.
    let recipient_hits = || {
        metric_value(
            &String::from_utf8(herald_telemetry::metrics::encode_text().unwrap()).unwrap(),
            "herald_cache_lookups_total{kind=\"recipient\",result=\"hit\"}",
        )
    };
    let hits_before = recipient_hits();
    let mut recovered = false;
    for _ in 0..10 {
        let id = stack.notify(alert(&["user-1"], &["email"])).await;
        stack.wait_until_final(&id, Duration::from_secs(30)).await;
        if recipient_hits() > hits_before {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(recovered, "the cache serves again once Redis is back");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
