//! Crashes, restarts and scale-out: nothing lost, nothing sent twice.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const SENT: &str = "SELECT count(*) FROM deliveries WHERE status = 'sent'";

#[tokio::test]
async fn a_worker_killed_mid_batch_delivers_every_delivery_exactly_once_after_restart() {
    let mut stack = start_stack(None).await;
    // The restarted worker is the same group member (as a StatefulSet pod would be).
    stack.settings.worker.instance_id = Some("worker-0".into());
    // A bound well below the 10,000 deliveries, so that "within max_held" says something.
    stack.settings.providers.twilio.max_held = 2048;
    // The provider honours the reference: in-doubt resends after the crash are answered, not
    // delivered again, so "received once" is exact (docs/DESIGN.md, "in doubt").
    stack
        .configure_provider(
            "twilio",
            json!({"latency_ms": 20, "honour_idempotency_reference": true}),
        )
        .await;
    stack.insert_users(10_000).await;
    stack.notify_each_user(0..10_000, "sms").await;

    let mut worker = worker_process(&stack.settings, free_port());
    stack
        .wait_for_count(SENT, 1500, Duration::from_secs(60))
        .await;
    worker.kill().await.unwrap(); // SIGKILL, mid-stream
    worker.wait().await.unwrap();
    let sent_at_kill = stack.count(SENT).await;
    assert!(
        sent_at_kill < 10_000,
        "the kill happened mid-run ({sent_at_kill} sent)"
    );

    let _restarted = worker_process(&stack.settings, free_port());
    stack
        .wait_for_count(SENT, 10_000, Duration::from_secs(120))
        .await;

    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 10_000, "{stats}");
    assert_eq!(stats["twilio"]["distinct_references"], 10_000);
    assert_eq!(stats["twilio"]["duplicates"], 0);
    let replays = stats["twilio"]["idempotent_replays"].as_u64().unwrap();
    let in_flight_bound = stack.settings.providers.twilio.max_held as u64;
    let taken_over = stack
        .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'")
        .await as u64;
    let in_doubt = stack.in_doubt_attempts().await;
    assert!(
        replays <= in_doubt && taken_over <= in_flight_bound,
        "only in-doubt sends are repeated: {replays} repeats, {in_doubt} in doubt of which \
         {taken_over} taken over from the killed worker (at most {in_flight_bound})"
    );
    assert_eq!(stack.count("SELECT count(*) FROM deliveries").await, 10_000);
}

/// The in-doubt set is what a worker has sent but not yet recorded when it dies. A delivery keeps
/// its room in the lane until its outcome is written, so however far PostgreSQL falls behind, the
/// provider calls not yet recorded never exceed the lane's `max_held` (a slow recorder stops the
/// lane instead of letting sent-but-unrecorded outcomes pile up in memory).
#[tokio::test]
async fn outcomes_not_yet_recorded_keep_their_lane_room_so_the_in_doubt_set_stays_within_max_held()
{
    let mut stack = start_stack(None).await;
    const MAX_HELD: usize = 50;
    stack.settings.providers.twilio.max_held = MAX_HELD;
    stack
        .configure_provider("twilio", json!({"latency_ms": 2}))
        .await;
    stack.insert_users(1000).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    // Another session holds the attempts table: only the recorder writes it, so every outcome
    // waits while admission, the pump and the heartbeat go on.
    let attempts_lock =
        herald_testing::TableLock::take(&stack.settings, "delivery_attempts", "EXCLUSIVE").await;
    stack.notify_each_user(0..1000, "sms").await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries",
            1000,
            Duration::from_secs(60),
        )
        .await;
    // Give the lane time to send far more than it may hold, were it allowed to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_while_stalled = stack.simulator_stats().await["twilio"]["messages"]
        .as_u64()
        .unwrap();
    assert_eq!(stack.count(SENT).await, 0, "nothing could be recorded");
    assert!(
        sent_while_stalled > 0 && sent_while_stalled <= MAX_HELD as u64,
        "calls not yet recorded stay within max_held ({MAX_HELD}): {sent_while_stalled}"
    );

    attempts_lock.release().await;
    stack
        .wait_for_count(SENT, 1000, Duration::from_secs(120))
        .await;
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 1000, "{stats}");
    assert_eq!(stats["twilio"]["duplicates"], 0, "{stats}");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_broker_restart_mid_run_loses_nothing() {
    let mut broker = KafkaCluster::start(1).await;
    let stack = start_stack(Some(&broker.brokers())).await;
    stack.insert_users(600).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    stack.notify_each_user(0..300, "sms").await;
    stack
        .wait_for_count(SENT, 50, Duration::from_secs(60))
        .await;
    broker.kill().await;
    // Accepted while the broker is away: they wait in the outbox.
    stack.notify_each_user(300..600, "sms").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart().await;

    stack
        .wait_for_count(SENT, 600, Duration::from_secs(120))
        .await;
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["distinct_references"], 600);
    // The broker's restart repeats no call: a repeat is only a call that got no answer (the
    // provider's timeout on a loaded machine), which the in-doubt set documents.
    let duplicates = stats["twilio"]["duplicates"].as_u64().unwrap();
    let in_doubt = stack.in_doubt_attempts().await;
    assert!(
        duplicates <= in_doubt,
        "{duplicates} sent twice, {in_doubt} in doubt: {stats}"
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

async fn delivered_by(metrics_port: u16) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("herald_deliveries_total{") && line.contains("status=\"sent\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn two_workers_in_one_group_share_the_partitions_and_deliver_each_once() {
    // No call may time out here: a timed-out call is in doubt and sent again, which this test
    // counts. In a full `make test` it once counted 2,601 messages for 2,000 deliveries, what a
    // worker stalled for a second on the busy 2-core machine does with ~600 calls in flight at the
    // tests' usual 1 s timeout.
    let stack = start_stack_with(None, None, |settings| {
        settings.providers.twilio.timeout_ms = 10_000;
        settings.worker.lease_ms = 20_000;
    })
    .await;
    stack
        .configure_provider("twilio", json!({"latency_ms": 5}))
        .await;
    stack.insert_users(2000).await;
    let (first_port, second_port) = (free_port(), free_port());
    let _first = worker_process(&stack.settings, first_port);
    let _second = worker_process(&stack.settings, second_port);
    // Both hold partitions before the records arrive.
    wait_until_each_holds_partitions(&[first_port, second_port]).await;

    stack.notify_each_user(0..2000, "sms").await;
    stack
        .wait_for_count(SENT, 2000, Duration::from_secs(90))
        .await;
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 2000);
    assert_eq!(stats["twilio"]["duplicates"], 0, "{stats}");
    let (first, second) = (
        delivered_by(first_port).await,
        delivered_by(second_port).await,
    );
    assert_eq!(first + second, 2000);
    assert!(
        first > 0 && second > 0,
        "both workers delivered: {first} and {second}"
    );
}
