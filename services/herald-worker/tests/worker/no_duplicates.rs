//! Nothing is sent twice without a crash: deliveries that wait long for a slow, rate-limited
//! provider stay owned by their live worker, however long they wait.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const SENT: &str = "SELECT count(*) FROM deliveries WHERE status = 'sent'";

#[tokio::test]
async fn a_slow_rate_limited_provider_receives_each_of_10000_deliveries_once() {
    let stack = start_stack_with(None, None, |settings| {
        // Sends wait for the limiter far longer than the lease: admission outruns the provider
        // (10,000 at 500 a second: the last ones wait about 20 s).
        settings.providers.twilio.requests_per_second = 500;
        settings.providers.twilio.max_in_flight = 256;
        settings.worker.lease_ms = 8000;
        // A call that times out is in doubt and sent again (docs/DESIGN.md, "The in-doubt set"):
        // this test is about waiting, not timeouts, so no answer of 300-400 ms may time out,
        // however busy the machine (with 1 s, 9 of 10,000 did in a `make test` on 2 cores).
        settings.providers.twilio.timeout_ms = 4000;
    })
    .await;
    // Slow, and not deduplicating: any second send shows.
    stack
        .configure_provider(
            "twilio",
            json!({"latency_ms": 300, "latency_jitter_ms": 100}),
        )
        .await;
    stack.insert_users(10_000).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack.notify_each_user(0..10_000, "sms").await;

    stack
        .wait_for_count(SENT, 10_000, Duration::from_secs(120))
        .await;
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 10_000, "{stats}");
    assert_eq!(stats["twilio"]["duplicates"], 0, "{stats}");
    // The scenario was adversarial: deliveries waited longer than the lease to be sent.
    let longest_wait_ms = stack
        .count("SELECT (extract(epoch FROM max(updated_at - created_at)) * 1000)::bigint FROM deliveries")
        .await;
    assert!(
        longest_wait_ms > stack.settings.worker.lease_ms as i64,
        "longest admission-to-sent wait {longest_wait_ms} ms"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'")
            .await,
        0,
        "no claim of a live worker was taken over"
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
