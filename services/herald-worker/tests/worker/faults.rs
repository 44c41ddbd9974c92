//! The fault suite: a steady load through a slow, rate-limited and sometimes failing provider while
//! one part of the system fails hard — the API, the worker or the broker killed (-9), PostgreSQL
//! restarted, Redis stopped. Afterwards, from the database and the provider's ledger: every
//! accepted notification is final, nothing is lost, and nothing is sent twice outside the in-doubt
//! set (docs/DESIGN.md). A cluster of three brokers losing its leaders: `kafka_cluster.rs`.

use std::time::{Duration, Instant};

use herald_config::RedisSettings;
use herald_store::cache::Redis;
use herald_testing::eventually;
use serde_json::json;

use crate::helpers::*;
use crate::steady_load::*;

const LOAD_SECONDS: u64 = 12;

#[tokio::test]
async fn the_api_killed_during_a_steady_load_loses_nothing() {
    let mut stack = prepare_stack(None, None, fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack, LOAD_SECONDS).await;
    let port = free_port();
    stack.api = format!("http://127.0.0.1:{port}");
    let mut api = api_process(&stack.settings, port);
    wait_for_port(port).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone(), LOAD_SECONDS);

    tokio::time::sleep(Duration::from_secs(4)).await;
    api.kill().await.unwrap(); // kill -9, mid-stream: commits, publishes and answers in flight
    api.wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _api = api_process(&stack.settings, port);
    let load = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &load, false).await;
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
    users_for_the_load(&stack, LOAD_SECONDS).await;
    let mut worker = worker_process(&stack.settings, free_port());
    let load = start_load(stack.api.clone(), stack.api_key.clone(), LOAD_SECONDS);

    tokio::time::sleep(Duration::from_secs(5)).await;
    worker.kill().await.unwrap(); // kill -9, with sends in flight
    worker.wait().await.unwrap();
    let _worker = worker_process(&stack.settings, free_port());
    let load = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &load, true).await;
}

#[tokio::test]
async fn the_broker_killed_during_a_steady_load_loses_nothing() {
    let mut broker = KafkaCluster::start(1).await;
    let stack = start_stack_with(Some(&broker.brokers()), None, fault_settings).await;
    troublesome_providers(&stack, false).await;
    users_for_the_load(&stack, LOAD_SECONDS).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone(), LOAD_SECONDS);

    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart().await;
    let load = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &load, false).await;
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
    users_for_the_load(&stack, LOAD_SECONDS).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone(), LOAD_SECONDS);

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
    let load = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &load, false).await;
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
    users_for_the_load(&stack, LOAD_SECONDS).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let load = start_load(stack.api.clone(), stack.api_key.clone(), LOAD_SECONDS);

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
    let load = load.await.unwrap();
    assert_nothing_lost_nothing_doubled(&stack, &load, false).await;

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

/// With Redis gone, only a call that finds it gone may wait for it: the next ones fail at once
/// until a rebuilt connection answers again. Otherwise every cache look-up and shared rate-limit
/// grant waits out its timeout before falling back, and delivery runs at half its pace (measured:
/// 175 to 215 deliveries in the 6 s of `with_redis_stopped…` with waits, 314 to 444 without).
#[tokio::test]
async fn with_redis_gone_calls_fail_at_once_and_succeed_again_once_it_is_back() {
    let mut server = RedisServer::start().await;
    let redis = Redis::new(&RedisSettings::new(server.url().into(), 1000)).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || redis.ping()).await,
        "never connected"
    );

    server.kill().await;
    // The call that finds it gone: at most its timeout.
    let found_gone = Instant::now();
    assert!(!redis.ping().await);
    assert!(found_gone.elapsed() <= Duration::from_millis(1_500));
    let after = Instant::now();
    for _ in 0..20 {
        assert!(!redis.ping().await, "answered with Redis killed");
    }
    let twenty_calls = after.elapsed();
    assert!(
        twenty_calls < Duration::from_millis(250),
        "20 calls with Redis gone took {twenty_calls:?}: each waited for it"
    );

    server.start_again().await;
    assert!(
        eventually(Duration::from_secs(10), || redis.ping()).await,
        "no answer 10 s after Redis came back"
    );
}
