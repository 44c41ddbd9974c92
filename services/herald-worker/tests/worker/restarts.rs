//! The README's commands run twice: a worker that stops together with its broker, or one killed
//! and replaced, gets its partitions back within the group's session timeout and delivers.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// SIGTERM, then the worker must exit by itself, drained (status 0), within its drain timeout and a
/// margin for the rest of its stop on a busy machine (measured: 5.2 s alone, 8 s beside the other
/// stream of `make test`, for a 5 s drain timeout).
async fn stops_by_itself_within_its_drain_timeout(
    stack: &Stack,
    worker: &mut tokio::process::Child,
    situation: &str,
) {
    let stopping = Instant::now();
    terminate(worker);
    let drain_timeout = Duration::from_millis(stack.settings.worker.drain_timeout_ms);
    let exit = tokio::time::timeout(drain_timeout + Duration::from_secs(10), worker.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the worker still ran {:?} after SIGTERM {situation}",
                stopping.elapsed()
            )
        })
        .unwrap();
    assert!(exit.success(), "a drained stop exits 0: {exit:?}");
}

/// u1, with a phone, and a worker process that holds partitions.
async fn u1_and_a_ready_worker(stack: &Stack) -> tokio::process::Child {
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let metrics_port = free_port();
    let worker = worker_process(&stack.settings, metrics_port);
    wait_until_ready(metrics_port).await;
    worker
}

/// Notifies an SMS to u1 whose provider call takes `latency_ms`, and returns once a worker has
/// claimed it for sending.
async fn an_sms_in_flight(stack: &Stack, latency_ms: u64) -> String {
    stack
        .configure_provider("twilio", json!({"latency_ms": latency_ms}))
        .await;
    let id = stack.notify(alert(&["u1"], &["sms"])).await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status = 'sending'"),
            1,
            Duration::from_secs(30),
        )
        .await;
    id
}

async fn delivered_within(stack: &Stack, timeout: Duration) -> Duration {
    let started = Instant::now();
    let id = stack.notify(alert(&["u1"], &["sms"])).await;
    let view = stack.wait_until_final(&id, timeout).await;
    assert_eq!(view["status"], "delivered", "{view}");
    started.elapsed()
}

#[tokio::test]
async fn a_worker_stopped_together_with_its_broker_delivers_again_after_both_restart() {
    let mut broker = KafkaCluster::start(1).await;
    let stack = start_stack(Some(&broker.brokers())).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let mut worker = worker_process(&stack.settings, free_port());
    delivered_within(&stack, Duration::from_secs(60)).await;

    // Both at once, as Ctrl-C in a terminal used to stop them: the worker cannot commit nor leave
    // its groups, gives both up after at most its drain timeout, and stops (it once waited for the
    // broker, 25 s and more; its status events consumer, caught joining its group, once waited 15 s
    // and more).
    broker.kill().await;
    stops_by_itself_within_its_drain_timeout(&stack, &mut worker, "with its broker away").await;
    broker.restart().await;
    let _replacement = worker_process(&stack.settings, free_port());

    let took = delivered_within(&stack, Duration::from_secs(90)).await;
    let session_timeout = Duration::from_millis(stack.settings.worker.session_timeout_ms);
    assert!(
        took < session_timeout + Duration::from_secs(10),
        "took {took:?} (session timeout {session_timeout:?})"
    );
}

/// A broker that stops answering (a long pause, a partition, a broker stopped with `kill -STOP`)
/// while the worker has status events to relay: the relay waits up to `kafka.message_timeout_ms`
/// (30 s, as configured in production) for their acknowledgement, and the worker's stop once waited
/// for it (26 s measured). It stops within its drain timeout anyway, says why in its log, and
/// nothing is lost: the events are relayed again once a broker answers.
#[tokio::test]
async fn a_worker_whose_broker_stops_answering_mid_traffic_stops_within_its_drain_timeout() {
    let broker = KafkaCluster::start(1).await;
    let stack = start_stack_with(Some(&broker.brokers()), None, |settings| {
        settings.kafka.message_timeout_ms = 30_000;
        settings.outbox.grace_ms = 31_000;
        settings.providers.twilio.timeout_ms = 10_000;
        settings.worker.lease_ms = 20_000;
    })
    .await;
    let mut worker = u1_and_a_ready_worker(&stack).await;
    delivered_within(&stack, Duration::from_secs(60)).await;

    // A call in flight when the broker stops answering: its outcome makes status events that the
    // relay then cannot get acknowledged.
    let id = an_sms_in_flight(&stack, 2_000).await;
    broker.pause();
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{id}' AND status IN ('sent', 'delivered')"),
            1,
            Duration::from_secs(30),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the relay has leased its events and waits
    assert!(
        stack.count("SELECT count(*) FROM status_events").await > 0,
        "the delivery's status events wait for the broker"
    );

    // The relay alone would hold it until the message timeout, 25 s longer than the bound.
    stops_by_itself_within_its_drain_timeout(&stack, &mut worker, "with its broker not answering")
        .await;
    broker.resume();
}

#[tokio::test]
async fn a_second_sigterm_ends_a_draining_worker_at_once() {
    let stack = start_stack_with(None, None, |settings| {
        settings.worker.drain_timeout_ms = 20_000;
        settings.providers.twilio.timeout_ms = 10_000;
        settings.worker.lease_ms = 20_000;
    })
    .await;
    let mut worker = u1_and_a_ready_worker(&stack).await;
    // A call that hangs: the first SIGTERM's drain waits for it, up to the 20 s drain timeout.
    an_sms_in_flight(&stack, 60_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // claimed, now in the call

    terminate(&worker);
    let still_draining = tokio::time::timeout(Duration::from_secs(2), worker.wait()).await;
    assert!(
        still_draining.is_err(),
        "the first SIGTERM drains: {still_draining:?}"
    );
    let second = Instant::now();
    terminate(&worker);
    let exit = tokio::time::timeout(Duration::from_secs(2), worker.wait())
        .await
        .expect("a second SIGTERM ends the worker at once")
        .unwrap();
    assert_eq!(
        exit.code(),
        Some(128 + 15),
        "{exit:?} after {:?}",
        second.elapsed()
    );
}

#[tokio::test]
async fn a_replacement_for_a_killed_worker_gets_its_partitions_and_delivers() {
    let mut broker = KafkaCluster::start(1).await;
    let stack = start_stack(Some(&broker.brokers())).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let mut worker = worker_process(&stack.settings, free_port());
    delivered_within(&stack, Duration::from_secs(60)).await;

    worker.kill().await.unwrap(); // kill -9: no goodbye to the group
    let metrics_port = free_port();
    let _replacement = worker_process(&stack.settings, metrics_port);
    let took = delivered_within(&stack, Duration::from_secs(90)).await;
    let session_timeout = Duration::from_millis(stack.settings.worker.session_timeout_ms);
    assert!(
        took < session_timeout + Duration::from_secs(10),
        "a replacement worker took {took:?} to deliver (session timeout {session_timeout:?})"
    );
    let readiness: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{metrics_port}/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        readiness["assigned_partitions"].as_u64().unwrap() > 0,
        "{readiness}"
    );
    broker.kill().await;
}
