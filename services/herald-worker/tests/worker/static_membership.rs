//! Static group membership (`worker.instance_id`, Kafka's `group.instance.id`), which the chart's
//! StatefulSet sets to each pod's name (docs/DEPLOY.md, "Rollouts and rebalances"): a worker that
//! a rollout stops and starts again under the same id takes its own partitions back, and no other
//! worker is rebalanced. The chart's choice of a StatefulSet rests on it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// How long the stopped worker stays away: a pod's replacement (its deletion, the new pod's
/// creation and start), well within the session timeout (30 s). A restart quicker than a rebalance
/// would pass without static membership too: cooperative-sticky hands a member that left and at once
/// came back the same partitions, after a rebalance nobody else notices.
const AWAY: Duration = Duration::from_secs(8);

/// `herald_worker_partitions_moved_total{change}` of the worker on `port`: partitions it gained
/// (`assigned`) or gave up (`revoked`) in rebalances.
async fn partitions_moved(port: u16, change: &str) -> f64 {
    let series = format!("herald_worker_partitions_moved_total{{change=\"{change}\"}} ");
    worker_metrics(port)
        .await
        .lines()
        .filter_map(|line| line.strip_prefix(&series)?.parse::<f64>().ok())
        .sum()
}

/// Waits until the workers on `ports` hold every partition of both topics between them and have
/// not moved one for 3 s (a cooperative rebalance may take two rounds).
async fn settled(ports: &[u16], partitions: u64) {
    let started = Instant::now();
    let mut last = None;
    let mut unchanged_since = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let mut held = Vec::new();
        for port in ports {
            held.push(assigned_partitions_by_topic(*port).await);
        }
        let total: u64 = held.iter().flat_map(|by_topic| by_topic.values()).sum();
        if last.as_ref() != Some(&held) {
            last = Some(held);
            unchanged_since = Instant::now();
        } else if total == partitions && unchanged_since.elapsed() > Duration::from_secs(3) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the workers on {ports:?} did not settle on {partitions} partitions: {last:?}");
}

#[tokio::test]
async fn a_worker_restarted_under_its_instance_id_takes_its_own_partitions_back_and_no_other_moves()
{
    let stack = prepare_stack(None, None, |_| {}).await;
    let partitions = 2 * stack.settings.kafka.partitions as u64;
    let session_timeout = Duration::from_millis(stack.settings.worker.session_timeout_ms);
    let member = |instance_id: &str| {
        let mut settings = stack.settings.clone();
        settings.worker.instance_id = Some(instance_id.to_owned());
        settings
    };
    let (restarted_settings, other_settings) = (member("worker-0"), member("worker-1"));
    let (restarted_port, other_port) = (free_port(), free_port());
    let mut restarted = worker_process(&restarted_settings, restarted_port);
    let _other = worker_process(&other_settings, other_port);
    wait_until_each_holds_partitions(&[restarted_port, other_port]).await;
    settled(&[restarted_port, other_port], partitions).await;
    let held_before: BTreeMap<String, u64> = assigned_partitions_by_topic(restarted_port).await;
    let other_held = assigned_partitions_by_topic(other_port).await;
    let other_assigned = partitions_moved(other_port, "assigned").await;
    let other_revoked = partitions_moved(other_port, "revoked").await;

    // A rollout's stop: SIGTERM, a drained exit. A static member's consumers close without leaving
    // the group (KIP-345), so the broker keeps its partitions for it until the session times out.
    terminate(&restarted);
    let exit = tokio::time::timeout(Duration::from_secs(30), restarted.wait())
        .await
        .expect("the worker stops within its drain timeout")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let stopped = Instant::now();
    tokio::time::sleep(AWAY).await;
    assert_eq!(
        assigned_partitions_by_topic(other_port).await,
        other_held,
        "the other worker took partitions of a member that is only restarting"
    );
    let replacement_port = free_port();
    let _replacement = worker_process(&restarted_settings, replacement_port);
    let started = Instant::now();
    wait_until_ready(replacement_port).await;
    loop {
        if assigned_partitions_by_topic(replacement_port).await == held_before {
            break;
        }
        assert!(
            stopped.elapsed() < session_timeout,
            "the restarted member did not get its own partitions back within the session timeout \
             ({session_timeout:?}): it holds {:?}, it held {held_before:?}",
            assigned_partitions_by_topic(replacement_port).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();

    // Past the session timeout of the stopped member: had the broker given its partitions away,
    // or rebalanced when it came back, the other worker would have gained or given up some.
    tokio::time::sleep(session_timeout.saturating_sub(stopped.elapsed()) + Duration::from_secs(2))
        .await;
    assert_eq!(
        (
            partitions_moved(other_port, "assigned").await,
            partitions_moved(other_port, "revoked").await
        ),
        (other_assigned, other_revoked),
        "the other worker was rebalanced by a restart under the same instance id"
    );
    assert_eq!(assigned_partitions_by_topic(other_port).await, other_held);
    assert_eq!(
        assigned_partitions_by_topic(replacement_port).await,
        held_before
    );
    eprintln!("the restarted member held its partitions again {took:?} after its start");
}
