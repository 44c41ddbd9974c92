//! The inspection API: counts per reference prove exactly-once delivery, records show what was
//! sent, and reset starts a clean run.

use serde_json::{json, Value};

use crate::helpers::{mail_with_reference, sms_form, spawn_simulator, spawn_simulator_with};

#[tokio::test]
async fn stats_and_references_count_duplicates_per_reference() {
    let simulator = spawn_simulator().await;
    for reference in ["a", "a", "b", "a"] {
        assert_eq!(
            simulator
                .send_mail(&mail_with_reference(reference))
                .await
                .status(),
            202
        );
    }
    let mut without_reference = mail_with_reference("x");
    without_reference["personalizations"][0]
        .as_object_mut()
        .unwrap()
        .remove("custom_args");
    assert_eq!(simulator.send_mail(&without_reference).await.status(), 202);
    for reference in ["t1", "t2", "t2"] {
        assert_eq!(
            simulator
                .send_sms(&sms_form("hi"), Some(reference))
                .await
                .status(),
            201
        );
    }
    simulator.send_sms(&sms_form(""), Some("t3")).await;

    let stats = simulator.stats().await;
    assert_eq!(
        stats["sendgrid"],
        json!({
            "requests": 5, "accepted": 5, "rejected": 0, "server_errors": 0,
            "rate_limited": 0, "timeouts": 0, "messages": 5, "duplicates": 2,
            "distinct_references": 2, "idempotent_replays": 0, "untracked_references": 0
        })
    );
    assert_eq!(stats["twilio"]["requests"], 4);
    assert_eq!(stats["twilio"]["accepted"], 3);
    assert_eq!(stats["twilio"]["rejected"], 1);
    assert_eq!(stats["twilio"]["duplicates"], 1);
    assert_eq!(stats["twilio"]["distinct_references"], 2);

    assert_eq!(
        simulator
            .get_json("/_sim/references?provider=sendgrid")
            .await,
        json!({"counts": {"a": 3, "b": 1}})
    );
    assert_eq!(
        simulator.get_json("/_sim/references?provider=twilio").await,
        json!({"counts": {"t1": 1, "t2": 2}})
    );
}

#[tokio::test]
async fn received_filters_by_reference_and_keeps_the_newest_last() {
    let simulator = spawn_simulator().await;
    for (reference, body) in [("r1", "first"), ("r2", "second"), ("r1", "third")] {
        simulator.send_sms(&sms_form(body), Some(reference)).await;
    }

    let bodies = |received: Value| -> Vec<String> {
        received["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        bodies(
            simulator
                .get_json("/_sim/received?provider=twilio&reference=r1")
                .await
        ),
        ["first", "third"]
    );
    assert_eq!(
        bodies(
            simulator
                .get_json("/_sim/received?provider=twilio&limit=2")
                .await
        ),
        ["second", "third"]
    );
    assert_eq!(
        bodies(simulator.get_json("/_sim/received?provider=sendgrid").await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_record_ring_is_bounded_but_reference_counts_are_complete() {
    let simulator = spawn_simulator_with(|config| config.record_capacity = 2).await;
    for number in 0..4 {
        simulator
            .send_sms(&sms_form("hi"), Some(&format!("r{number}")))
            .await;
    }
    let received = simulator
        .get_json("/_sim/received?provider=twilio&limit=100")
        .await;
    assert_eq!(received["messages"].as_array().unwrap().len(), 2);
    let references = simulator.get_json("/_sim/references?provider=twilio").await;
    assert_eq!(references["counts"].as_object().unwrap().len(), 4);
}

#[tokio::test]
async fn reset_clears_records_counts_and_one_shot_faults_but_keeps_rates() {
    let simulator = spawn_simulator().await;
    simulator.send_mail(&mail_with_reference("a")).await;
    simulator.send_sms(&sms_form("hi"), Some("t")).await;
    simulator
        .configure(
            "sendgrid",
            json!({"latency_ms": 5, "fail_next": 3, "fail_next_kind": "rate_limit"}),
        )
        .await;

    let response = simulator
        .client
        .post(simulator.url("/_sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let stats = simulator.stats().await;
    for provider in ["sendgrid", "twilio"] {
        assert_eq!(stats[provider]["requests"], 0);
        assert_eq!(stats[provider]["distinct_references"], 0);
        let references = simulator
            .get_json(&format!("/_sim/references?provider={provider}"))
            .await;
        assert_eq!(references, json!({"counts": {}}));
        let received = simulator
            .get_json(&format!("/_sim/received?provider={provider}"))
            .await;
        assert_eq!(received, json!({"messages": []}));
    }
    let config = simulator.get_json("/_sim/config").await;
    assert_eq!(config["sendgrid"]["fail_next"], 0);
    assert_eq!(config["sendgrid"]["latency_ms"], 5);
    assert_eq!(
        simulator
            .send_mail(&mail_with_reference("a"))
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn bad_inspection_queries_are_json_400s() {
    let simulator = spawn_simulator().await;
    for path in [
        "/_sim/references",
        "/_sim/references?provider=mailgun",
        "/_sim/received?provider=twilio&limit=0",
        "/_sim/received?provider=twilio&limit=many",
    ] {
        let response = simulator
            .client
            .get(simulator.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn with_idempotency_honoured_a_repeated_reference_is_answered_but_not_delivered_again() {
    let simulator = spawn_simulator().await;
    simulator
        .configure("sendgrid", json!({"honour_idempotency_reference": true}))
        .await;
    simulator
        .configure("twilio", json!({"honour_idempotency_reference": true}))
        .await;

    let first = simulator.send_mail(&mail_with_reference("once")).await;
    let repeat = simulator.send_mail(&mail_with_reference("once")).await;
    assert_eq!(first.status(), 202);
    assert_eq!(repeat.status(), 202);
    assert_eq!(
        first.headers().get("x-message-id"),
        repeat.headers().get("x-message-id"),
        "the repeat gets the original answer"
    );

    let first_sms: Value = simulator
        .send_sms(&sms_form("hi"), Some("sms-once"))
        .await
        .json()
        .await
        .unwrap();
    let repeat_sms: Value = simulator
        .send_sms(&sms_form("hi"), Some("sms-once"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first_sms["sid"], repeat_sms["sid"]);

    let stats = simulator.stats().await;
    for provider in ["sendgrid", "twilio"] {
        assert_eq!(stats[provider]["messages"], 1, "{provider}: delivered once");
        assert_eq!(stats[provider]["duplicates"], 0);
        assert_eq!(stats[provider]["idempotent_replays"], 1);
    }
}

#[tokio::test]
async fn every_provider_is_in_stats_config_references_and_reset() {
    const PROVIDERS: [&str; 8] = [
        "sendgrid", "twilio", "slack", "discord", "telegram", "pushover", "webhook", "smtp",
    ];
    let simulator = spawn_simulator().await;
    simulator.send_mail(&mail_with_reference("m")).await;
    simulator.send_sms(&sms_form("hi"), Some("s")).await;
    let slack = simulator
        .post_json(
            "/slack/services/T1/B1/secret",
            &json!({"text": "hi"}),
            Some("k"),
        )
        .await;
    assert_eq!(slack.status(), 200);
    let discord = simulator
        .post_json(
            "/discord/api/webhooks/1/token",
            &json!({"content": "hi"}),
            Some("d"),
        )
        .await;
    assert_eq!(discord.status(), 204);
    let telegram = simulator
        .post_json(
            &format!("/telegram/bot{}/sendMessage", crate::helpers::BOT_TOKEN),
            &json!({"chat_id": 1, "text": "hi"}),
            Some("t"),
        )
        .await;
    assert_eq!(telegram.status(), 200);
    let pushover =
        crate::pushover::send_form(&simulator, &crate::pushover::message_form(&[]), Some("p"))
            .await;
    assert_eq!(pushover.status(), 200);
    simulator
        .register_webhook_endpoint("orders", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .await;
    let unsigned = simulator
        .post_json("/webhooks/orders", &json!({"type": "x"}), None)
        .await;
    assert_eq!(unsigned.status(), 401);
    let smtp = crate::smtp::send_message(
        simulator.smtp,
        &["alex@example.com"],
        "X-Herald-Delivery-Id: e\r\nSubject: hi\r\n\r\nhi",
    )
    .await;
    assert!(smtp.starts_with("250 "), "{smtp}");

    let stats = simulator.stats().await;
    let mut names: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    let mut expected = PROVIDERS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for provider in [
        "sendgrid", "twilio", "slack", "discord", "telegram", "pushover", "smtp",
    ] {
        assert_eq!(stats[provider]["accepted"], 1, "{provider}");
    }
    assert_eq!(stats["webhook"]["rejected"], 1);
    for (provider, reference) in [
        ("slack", "k"),
        ("discord", "d"),
        ("telegram", "t"),
        ("pushover", "p"),
        ("smtp", "e"),
    ] {
        assert_eq!(
            simulator
                .get_json(&format!("/_sim/references?provider={provider}"))
                .await,
            json!({"counts": {reference: 1}}),
            "{provider}"
        );
    }
    let config = simulator.get_json("/_sim/config").await;
    for provider in PROVIDERS {
        assert_eq!(config[provider]["retry_after"], "1", "{provider}");
    }

    simulator
        .client
        .post(simulator.url("/_sim/reset"))
        .send()
        .await
        .unwrap();
    let stats = simulator.stats().await;
    for provider in PROVIDERS {
        assert_eq!(stats[provider]["requests"], 0, "{provider}");
        assert_eq!(
            simulator
                .get_json(&format!("/_sim/received?provider={provider}"))
                .await,
            json!({"messages": []}),
            "{provider}"
        );
    }
    // Registered endpoints are configuration: they survive a reset.
    let after_reset = simulator
        .post_json("/webhooks/orders", &json!({"type": "x"}), None)
        .await;
    assert_eq!(
        after_reset.status(),
        401,
        "still registered: refused for its signature"
    );
}
