//! Nothing accepted is lost: broker outages and a killed API process.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use herald_config::Settings;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_broker_stopped_while_requests_arrive_loses_nothing() {
    let mut broker = KafkaCluster::start(1).await;
    let settings = fresh_settings(&broker.brokers()).await;
    let app = start_app(settings, None).await;

    let mut accepted = HashSet::new();
    for round in 0..60 {
        if round == 20 {
            broker.kill().await;
        }
        if round == 45 {
            broker.restart().await;
        }
        let response = app
            .post_notification(&notification(&[&format!("user-{round}")]))
            .await;
        assert_eq!(
            response.status(),
            202,
            "the outbox has room, so the API keeps accepting"
        );
        accepted.insert(
            json(response).await["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }

    let mut on_topic = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !accepted.is_subset(&on_topic) && tokio::time::Instant::now() < deadline {
        let records = consume(
            &app.settings.kafka.brokers,
            &app.settings.kafka.topic,
            accepted.len() * 2,
            Duration::from_secs(3),
        )
        .await;
        on_topic.extend(records.iter().map(|record| record.envelope.notification_id));
    }
    let all_arrived = accepted.is_subset(&on_topic);
    let missing: Vec<_> = accepted.difference(&on_topic).collect();
    assert!(all_arrived, "accepted but never published: {missing:?}");
    let outbox_drained = eventually(Duration::from_secs(20), || async {
        app.count("SELECT count(*) FROM outbox_batches").await == 0
    })
    .await;
    assert!(outbox_drained);
    app.stop().await;
}

fn api_process(settings: &Settings, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald-api"))
        .arg("serve")
        .envs(herald_testing::process_environment(settings))
        .env("HERALD_SERVER__PORT", port.to_string())
        .env("HERALD_SERVER__WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting herald-api")
}

#[tokio::test]
async fn a_notification_accepted_just_before_the_api_is_killed_still_reaches_the_topic() {
    let mut broker = KafkaCluster::start(1).await;
    let settings = fresh_settings(&broker.brokers()).await;
    let database = herald_api::startup::connect_database(&settings)
        .await
        .unwrap();
    let (_, api_key) = create_tenant(&settings, &database, "crash").await;
    // With the broker away the broker cannot acknowledge before the kill: the crash window is
    // guaranteed, not left to timing.
    broker.kill().await;

    let port = free_port();
    let mut api = api_process(&settings, port);
    wait_for_port(port).await;
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/notifications"))
        .bearer_auth(&api_key)
        .json(&notification(&["survivor"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id: Uuid = json(response).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    api.kill().await.unwrap(); // SIGKILL: no shutdown hook runs
    api.wait().await.unwrap();

    broker.restart().await;
    let restarted_port = free_port();
    let _restarted = api_process(&settings, restarted_port);
    wait_for_port(restarted_port).await;

    let records = consume(
        &settings.kafka.brokers,
        &settings.kafka.topic,
        1,
        Duration::from_secs(45),
    )
    .await;
    assert_eq!(
        records.len(),
        1,
        "the relay of the restarted API publishes it"
    );
    assert_eq!(records[0].envelope.notification_id, id);
    assert_eq!(records[0].envelope.user_id, "survivor");
}

#[tokio::test]
async fn a_graceful_shutdown_commits_and_publishes_what_it_accepted() {
    let app = spawn_app().await;
    let bodies: Vec<_> = (0..50)
        .map(|index| notification(&[&format!("u{index}")]))
        .collect();
    let requests = bodies.iter().map(|body| app.post_notification(body));
    let responses = futures::future::join_all(requests).await;
    let accepted = responses
        .iter()
        .filter(|response| response.status() == 202)
        .count();
    assert_eq!(accepted, 50);
    let brokers = app.settings.kafka.brokers.clone();
    let topic = app.settings.kafka.topic.clone();
    app.stop().await;
    let records = consume(&brokers, &topic, 50, Duration::from_secs(20)).await;
    assert_eq!(ids_on_topic(&records).len(), 50);
}
