//! The fault suites' common ground (`faults.rs`, `kafka_cluster.rs`): a steady load of careful
//! clients through a slow, rate-limited and sometimes failing provider, and the ledger checks after
//! it — every accepted notification final, nothing lost, nothing sent twice outside the in-doubt
//! set (docs/DESIGN.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::*;

pub const LOAD_PER_SECOND: u64 = 60;

/// How long a careful client keeps repeating one request (after each `Retry-After`) before it
/// gives up. Longer than Herald takes to accept again once its brokers are back: in a fresh
/// `make test`, three restarted brokers on the loaded two-core machine took about 80 s to take
/// records again, and 90 s of patience left 830 of 2,880 requests of the quorum test unaccepted.
const CLIENT_PATIENCE: Duration = Duration::from_secs(180);

/// Every test's provider: slow with jitter, failing 3% and rate-limiting 2% of valid requests.
pub async fn troublesome_providers(stack: &Stack, honour_references: bool) {
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

pub fn fault_settings(settings: &mut herald_config::Settings) {
    settings.providers.sendgrid.requests_per_second = 150;
    settings.providers.twilio.requests_per_second = 150;
    // Longer than the providers ever take here: a timed-out call is in doubt too (it may have
    // reached the provider), and these suites count only what the faults cause.
    settings.providers.sendgrid.timeout_ms = 3000;
    settings.providers.twilio.timeout_ms = 3000;
    settings.worker.max_attempts = 8;
    settings.worker.lease_ms = 10_000;
}

/// What the clients of a steady load saw.
pub struct LoadReport {
    /// The ids of the accepted notifications.
    pub accepted: Vec<String>,
    /// Every answer, when it arrived: its status, or `None` for no answer (refused, timed out).
    pub answers: Vec<(Instant, Option<u16>)>,
    pub offered: u64,
}

/// Posts one notification every `1 / LOAD_PER_SECOND` for `seconds`, each with its own
/// idempotency key and retried (same key, after `Retry-After`) until accepted, as a careful client
/// would.
pub fn start_load(
    api: String,
    api_key: String,
    seconds: u64,
) -> tokio::task::JoinHandle<LoadReport> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let mut requests = JoinSet::new();
        let mut ticks = tokio::time::interval(Duration::from_millis(1000 / LOAD_PER_SECOND));
        let offered = LOAD_PER_SECOND * seconds;
        for index in 0..offered {
            ticks.tick().await;
            let channel = if index % 2 == 0 { "sms" } else { "email" };
            let body = alert(&[&format!("user-{index}")], &[channel]);
            let key = Uuid::new_v4().to_string();
            let (client, api, api_key, accepted, answers) = (
                client.clone(),
                api.clone(),
                api_key.clone(),
                accepted.clone(),
                answers.clone(),
            );
            requests.spawn(async move {
                let deadline = Instant::now() + CLIENT_PATIENCE;
                while Instant::now() < deadline {
                    let response = client
                        .post(format!("{api}/v1/notifications"))
                        .bearer_auth(&api_key)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    let status = response.as_ref().ok().map(|r| r.status().as_u16());
                    answers.lock().await.push((Instant::now(), status));
                    let mut pause = Duration::from_millis(250);
                    if let Ok(response) = response {
                        if response.status() == 202 {
                            let answer: Value = response.json().await.unwrap();
                            accepted
                                .lock()
                                .await
                                .push(answer["id"].as_str().unwrap().to_owned());
                            return;
                        }
                        // 408: the server did not read the request in time (an overloaded
                        // machine), so it was not taken; RFC 9110 lets a client repeat it.
                        assert!(
                            response.status().is_server_error() || response.status() == 408,
                            "only 5xx and 408 may be retried: {}",
                            response.status()
                        );
                        // As a careful client does: no sooner than the API asks.
                        if let Some(seconds) = response
                            .headers()
                            .get("retry-after")
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.parse::<u64>().ok())
                        {
                            pause = pause.max(Duration::from_secs(seconds));
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            });
        }
        while requests.join_next().await.is_some() {}
        let accepted = accepted.lock().await.clone();
        let answers = answers.lock().await.clone();
        LoadReport {
            accepted,
            answers,
            offered,
        }
    })
}

/// Waits until every accepted notification is final, then checks the ledger. With
/// `honour_references` the provider answered repeats without delivering them again: the repeats
/// must then be no more than the in-doubt takeovers; without it, there must be none at all.
pub async fn assert_nothing_lost_nothing_doubled(
    stack: &Stack,
    load: &LoadReport,
    honour_references: bool,
) {
    let accepted = &load.accepted;
    assert!(
        accepted.len() as u64 >= load.offered * 9 / 10,
        "the load was accepted: {} of {}",
        accepted.len(),
        load.offered
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

/// A recipient for every notification a load of `seconds` posts.
pub async fn users_for_the_load(stack: &Stack, seconds: u64) {
    stack
        .insert_users((LOAD_PER_SECOND * seconds) as usize)
        .await;
}
