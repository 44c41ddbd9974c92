//! A hostile tenant cannot stop, slow or duplicate another tenant's deliveries (issue 14). The
//! API-side holes are tested in `herald-api/tests/api/hostile.rs`.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// A placeholder bomb accepted before the ingest bound existed (written here straight into the
/// row): the worker measures what it would render, refuses it without a call, and stays up for
/// everyone else.
#[tokio::test]
async fn content_that_renders_beyond_the_bound_fails_without_a_call_and_the_worker_stays_up() {
    let stack = start_stack(None).await;
    stack.insert_users(2).await;
    let bomb = stack.notify(alert(&["user-0"], &["sms"])).await;
    execute(
        &stack.database,
        &format!(
            "UPDATE notifications SET body = repeat('{{{{a}}}}', 13107), \
             data = jsonb_build_object('a', repeat('x', 65000)) WHERE id = '{bomb}'"
        ),
    )
    .await;
    let healthy = stack.notify(alert(&["user-1"], &["sms"])).await;

    let metrics_port = free_port();
    let mut worker = worker_process(&stack.settings, metrics_port);
    let bombed = stack.wait_until_final(&bomb, Duration::from_secs(60)).await;
    let delivered = stack
        .wait_until_final(&healthy, Duration::from_secs(60))
        .await;

    assert_eq!(bombed["status"], "failed", "{bombed}");
    let error = bombed["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("renders to 851955000 bytes"), "{bombed}");
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let received = stack.received("twilio").await;
    assert_eq!(
        received["messages"].as_array().unwrap().len(),
        1,
        "only the healthy one: {received}"
    );
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
}

/// A delivery whose sender keeps dying (here: killed while its call is in flight, as an OOM kill
/// would) is taken over three times, then failed without a fourth call, never retried for ever.
#[tokio::test]
async fn a_delivery_whose_worker_keeps_dying_is_given_up_after_three_takeovers() {
    let stack = start_stack(None).await;
    stack.insert_users(1).await;
    // Long enough to kill the worker mid-call, short of the provider timeout (1 s in tests).
    stack
        .configure_provider("twilio", json!({"latency_ms": 700}))
        .await;
    let id = stack.notify(alert(&["user-0"], &["sms"])).await;

    for takeovers_so_far in 0..3 {
        let mut worker = worker_process(&stack.settings, free_port());
        stack
            .wait_for_count(
                &format!(
                    "SELECT count(*) FROM deliveries WHERE status = 'sending' \
                     AND attempts = {}",
                    takeovers_so_far + 1
                ),
                1,
                Duration::from_secs(60),
            )
            .await;
        worker.kill().await.unwrap();
        worker.wait().await.unwrap();
    }

    let metrics_port = free_port();
    let _survivor = worker_process(&stack.settings, metrics_port);
    let notification = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(notification["status"], "failed", "{notification}");
    let delivery = &notification["deliveries"][0];
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped 3 times before recording an outcome"),
        "{notification}"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'")
            .await,
        3
    );
    let calls = stack.simulator_stats().await["twilio"]["messages"]
        .as_u64()
        .unwrap_or(0);
    assert!(calls <= 3, "no call after the third takeover: {calls}");
    assert_eq!(
        stack.count("SELECT count(*) FROM dead_letters").await,
        1,
        "given up is a dead letter, replayable"
    );
    let metrics = worker_metrics(metrics_port).await;
    assert!(
        metrics.contains("herald_deliveries_given_up_after_takeovers_total{provider=\"twilio\"} 1"),
        "{metrics}"
    );
}
