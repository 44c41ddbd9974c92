//! The simulated Pushover Message API: a sent message's answer, headers and record, each
//! parameter's refusal, the application token, JSON bodies, the monthly limit, faults and
//! repeats of one delivery id.

use serde_json::{json, Value};

use crate::helpers::{spawn_simulator, spawn_simulator_with, TestSimulator, PUSHOVER_APP_TOKEN};

pub const MESSAGES_PATH: &str = "/pushover/1/messages.json";
pub const USER_KEY: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

/// A message as a form, with the default token and user: `extra` adds or replaces parameters.
pub fn message_form(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        ("token", PUSHOVER_APP_TOKEN),
        ("user", USER_KEY),
        ("message", "Disk full"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    for (name, value) in extra {
        form.retain(|(existing, _)| existing != name);
        form.push(((*name).to_owned(), (*value).to_owned()));
    }
    form
}

/// Posts `form` form-encoded, with `reference` as `X-Herald-Delivery-Id`.
pub async fn send_form(
    simulator: &TestSimulator,
    form: &[(String, String)],
    reference: Option<&str>,
) -> reqwest::Response {
    let mut request = simulator
        .client
        .post(simulator.url(MESSAGES_PATH))
        .form(form);
    if let Some(reference) = reference {
        request = request.header(crate::helpers::DELIVERY_ID_HEADER, reference);
    }
    request
        .send()
        .await
        .expect("calling the simulated Pushover")
}

fn assert_request_id(body: &Value) {
    let request = body["request"].as_str().expect("a request id");
    let uuid = uuid::Uuid::parse_str(request).expect("the request id is a UUID");
    assert_eq!(uuid.get_version_num(), 4, "{request}");
}

/// A 400 naming `parameter` with `problem`, and `error` in `errors`.
async fn assert_refused(response: reqwest::Response, parameter: &str, problem: &str, error: &str) {
    assert_eq!(response.status(), 400, "{parameter}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[parameter], problem, "{body}");
    assert_eq!(body["errors"], json!([error]), "{body}");
    assert_eq!(body["status"], 0, "{body}");
    assert_request_id(&body);
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn a_sent_message_is_200_with_status_1_and_a_request_id_and_is_recorded() {
    let simulator = spawn_simulator().await;
    let form = message_form(&[
        ("title", "Alert"),
        ("device", "phone,tablet-2"),
        ("priority", "1"),
        ("sound", "siren"),
        ("html", "1"),
        ("url", "https://status.example"),
        ("url_title", "Status"),
        ("timestamp", "1700000000"),
        ("ttl", "3600"),
        ("not_a_pushover_parameter", "ignored"),
    ]);
    let response = send_form(&simulator, &form, Some("pushover-1")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "X-Limit-App-Limit"), "10000");
    assert_eq!(header(&response, "X-Limit-App-Remaining"), "9999");
    let reset: i64 = header(&response, "X-Limit-App-Reset").parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(reset > now && reset <= now + 31 * 24 * 3600, "{reset}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 1);
    assert_request_id(&body);
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "no receipt below priority 2: {body}"
    );

    let message = simulator.received_one("pushover", "pushover-1").await;
    assert_eq!(message["provider"], "pushover");
    assert_eq!(message["recipient"], USER_KEY);
    assert_eq!(message["device"], "phone,tablet-2");
    assert_eq!(message["subject"], "Alert");
    assert_eq!(message["body"], "Disk full");
    assert_eq!(message["priority"], 1);
    assert_eq!(message["provider_message_id"], body["request"]);

    let minimal = send_form(&simulator, &message_form(&[]), Some("pushover-2")).await;
    assert_eq!(minimal.status(), 200);
    assert_eq!(header(&minimal, "X-Limit-App-Remaining"), "9998");
    let message = simulator.received_one("pushover", "pushover-2").await;
    for absent in ["device", "priority"] {
        assert!(message.get(absent).is_none(), "{absent}: {message}");
    }
    assert_eq!(message["subject"], Value::Null);
    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["accepted"], 2);
    assert_eq!(stats["pushover"]["messages"], 2);
}

#[tokio::test]
async fn a_json_body_with_the_same_fields_is_accepted() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .post_json(
            MESSAGES_PATH,
            &json!({
                "token": PUSHOVER_APP_TOKEN,
                "user": USER_KEY,
                "message": "From JSON",
                "title": "Json",
                "priority": -1,
                "html": 0
            }),
            Some("json-1"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 1);
    let message = simulator.received_one("pushover", "json-1").await;
    assert_eq!(message["body"], "From JSON");
    assert_eq!(message["priority"], -1);

    let invalid = simulator
        .post_json(
            MESSAGES_PATH,
            &json!({"token": PUSHOVER_APP_TOKEN, "user": USER_KEY, "message": "x", "priority": 5}),
            None,
        )
        .await;
    assert_refused(invalid, "priority", "is invalid", "priority is invalid").await;
    let broken = simulator
        .client
        .post(simulator.url(MESSAGES_PATH))
        .header("Content-Type", "application/json")
        .body("{\"token\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert_eq!(broken.json::<Value>().await.unwrap()["status"], 0);
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_400_token_invalid() {
    let simulator = spawn_simulator().await;
    for token in ["bPushoverAppTokenForTests00001", "short", ""] {
        let response = send_form(&simulator, &message_form(&[("token", token)]), None).await;
        assert_refused(response, "token", "invalid", "application token is invalid").await;
    }
    let mut without_token = message_form(&[]);
    without_token.retain(|(name, _)| name != "token");
    let response = send_form(&simulator, &without_token, None).await;
    assert_refused(response, "token", "invalid", "application token is invalid").await;
    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["rejected"], 4);
    assert_eq!(stats["pushover"]["messages"], 0);
}

#[tokio::test]
async fn the_configured_token_is_the_only_one_accepted() {
    const OTHER_TOKEN: &str = "anotherPushoverAppToken0000002";
    let simulator = spawn_simulator_with(|config| {
        config.pushover.app_token = secrecy::SecretString::from(OTHER_TOKEN);
    })
    .await;
    let default_token = send_form(&simulator, &message_form(&[]), None).await;
    assert_eq!(default_token.status(), 400);
    let configured = send_form(&simulator, &message_form(&[("token", OTHER_TOKEN)]), None).await;
    assert_eq!(configured.status(), 200);
}

/// Parameters added to a valid message, then the parameter the 400 names, its problem and the
/// sentence in `errors`.
type RefusalCase<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str, String);

#[tokio::test]
async fn each_invalid_parameter_is_400_naming_it() {
    let simulator = spawn_simulator().await;
    let long_message = "x".repeat(1025);
    let long_title = "x".repeat(251);
    let long_url = format!("https://x.example/{}", "x".repeat(500));
    let long_url_title = "x".repeat(101);
    let long_device = "d".repeat(26);
    let cases: Vec<RefusalCase> = vec![
        (
            vec![("user", "not-a-user-key")],
            "user",
            "invalid",
            "user identifier is invalid".into(),
        ),
        (
            vec![("user", "")],
            "user",
            "invalid",
            "user identifier is invalid".into(),
        ),
        (
            vec![("user", "invalid00000000000000000000000")],
            "user",
            "invalid",
            "user identifier is invalid".into(),
        ),
        (
            vec![("message", "")],
            "message",
            "cannot be blank",
            "message cannot be blank".into(),
        ),
        (
            vec![("message", "   ")],
            "message",
            "cannot be blank",
            "message cannot be blank".into(),
        ),
        (
            vec![("message", &long_message)],
            "message",
            "is too long",
            "message is more than 1024 characters".into(),
        ),
        (
            vec![("title", &long_title)],
            "title",
            "is too long",
            "title is more than 250 characters".into(),
        ),
        (
            vec![("url", &long_url)],
            "url",
            "is too long",
            "url is more than 512 characters".into(),
        ),
        (
            vec![("url_title", &long_url_title)],
            "url_title",
            "is too long",
            "url_title is more than 100 characters".into(),
        ),
        (
            vec![("device", "phone,,tablet")],
            "device",
            "is invalid",
            "device is invalid".into(),
        ),
        (
            vec![("device", "my phone")],
            "device",
            "is invalid",
            "device is invalid".into(),
        ),
        (
            vec![("device", &long_device)],
            "device",
            "is invalid",
            "device is invalid".into(),
        ),
        (
            vec![("priority", "3")],
            "priority",
            "is invalid",
            "priority is invalid".into(),
        ),
        (
            vec![("priority", "-3")],
            "priority",
            "is invalid",
            "priority is invalid".into(),
        ),
        (
            vec![("priority", "urgent")],
            "priority",
            "is invalid",
            "priority is invalid".into(),
        ),
        (
            vec![("html", "yes")],
            "html",
            "is invalid",
            "html is invalid".into(),
        ),
        (
            vec![("timestamp", "yesterday")],
            "timestamp",
            "is invalid",
            "timestamp is invalid".into(),
        ),
        (
            vec![("ttl", "-5")],
            "ttl",
            "is invalid",
            "ttl is invalid".into(),
        ),
        (
            vec![("priority", "2")],
            "retry",
            "must be supplied with priority=2",
            "retry must be supplied with priority=2".into(),
        ),
        (
            vec![("priority", "2"), ("retry", "60")],
            "expire",
            "must be supplied with priority=2",
            "expire must be supplied with priority=2".into(),
        ),
    ];
    let count = cases.len();
    for (extra, parameter, problem, error) in cases {
        let response = send_form(&simulator, &message_form(&extra), Some("refused")).await;
        assert_refused(response, parameter, problem, &error).await;
    }
    let mut without_message = message_form(&[]);
    without_message.retain(|(name, _)| name != "message");
    let response = send_form(&simulator, &without_message, None).await;
    assert_refused(
        response,
        "message",
        "cannot be blank",
        "message cannot be blank",
    )
    .await;

    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["rejected"], count + 1);
    assert_eq!(stats["pushover"]["messages"], 0);
    assert_eq!(
        simulator
            .get_json("/_sim/references?provider=pushover")
            .await,
        json!({"counts": {}})
    );
}

#[tokio::test]
async fn limits_are_inclusive_and_an_emergency_message_gets_a_receipt() {
    let simulator = spawn_simulator().await;
    let message = "é".repeat(1024);
    let title = "t".repeat(250);
    let device = "d".repeat(25);
    let exactly = message_form(&[
        ("message", &message),
        ("title", &title),
        ("device", &device),
        ("priority", "-2"),
    ]);
    assert_eq!(send_form(&simulator, &exactly, None).await.status(), 200);

    let emergency = message_form(&[("priority", "2"), ("retry", "30"), ("expire", "10800")]);
    let response = send_form(&simulator, &emergency, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let receipt = body["receipt"].as_str().expect("a receipt");
    assert_eq!(receipt.len(), 30);
    assert!(receipt.bytes().all(|byte| byte.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn fault_injection_gives_429_with_retry_after_500_and_504() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "pushover",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "7"}),
        )
        .await;
    let limited = send_form(&simulator, &message_form(&[]), Some("d")).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "Retry-After"), "7");
    assert_eq!(
        header(&limited, "X-Limit-App-Remaining"),
        "10000",
        "nothing was sent"
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["status"], 0);
    assert_eq!(
        body["errors"],
        json!(["application is over its message limit"])
    );
    assert_request_id(&body);

    simulator
        .configure(
            "pushover",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let failed = send_form(&simulator, &message_form(&[]), Some("d")).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.json::<Value>().await.unwrap()["status"], 0);

    simulator
        .configure(
            "pushover",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 10}),
        )
        .await;
    let timed_out = send_form(&simulator, &message_form(&[]), Some("d")).await;
    assert_eq!(timed_out.status(), 504);
    assert_eq!(timed_out.json::<Value>().await.unwrap()["status"], 0);

    // An invalid request does not consume a one-shot fault.
    simulator
        .configure(
            "pushover",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let invalid = send_form(&simulator, &message_form(&[("message", "")]), Some("d")).await;
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        send_form(&simulator, &message_form(&[]), Some("d"))
            .await
            .status(),
        500
    );
    assert_eq!(
        send_form(&simulator, &message_form(&[]), Some("d"))
            .await
            .status(),
        200
    );

    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["rate_limited"], 1);
    assert_eq!(stats["pushover"]["server_errors"], 2);
    assert_eq!(stats["pushover"]["timeouts"], 1);
    assert_eq!(stats["pushover"]["rejected"], 1);
    assert_eq!(stats["pushover"]["messages"], 1);
}

#[tokio::test]
async fn a_failure_rate_set_at_start_up_fails_every_valid_request() {
    let simulator = spawn_simulator_with(|config| {
        config.pushover.behaviour.failure_rate = 1.0;
    })
    .await;
    for _ in 0..3 {
        let response = send_form(&simulator, &message_form(&[]), None).await;
        assert_eq!(response.status(), 500);
    }
    assert_eq!(simulator.stats().await["pushover"]["server_errors"], 3);
    assert_eq!(
        simulator.get_json("/_sim/config").await["pushover"]["failure_rate"],
        1.0
    );
}

#[tokio::test]
async fn an_application_over_its_monthly_limit_is_429_until_reset() {
    let simulator = spawn_simulator_with(|config| config.pushover.app_limit = 2).await;
    for remaining in ["1", "0"] {
        let response = send_form(&simulator, &message_form(&[]), None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "X-Limit-App-Limit"), "2");
        assert_eq!(header(&response, "X-Limit-App-Remaining"), remaining);
    }
    let over = send_form(&simulator, &message_form(&[]), Some("over")).await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "X-Limit-App-Remaining"), "0");
    assert!(over.headers().get("Retry-After").is_none());
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        body["errors"],
        json!(["application is over its message limit"])
    );
    assert_eq!(body["status"], 0);
    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["rate_limited"], 1);
    assert_eq!(stats["pushover"]["messages"], 2);

    simulator
        .client
        .post(simulator.url("/_sim/reset"))
        .send()
        .await
        .unwrap();
    let after_reset = send_form(&simulator, &message_form(&[]), None).await;
    assert_eq!(after_reset.status(), 200);
    assert_eq!(header(&after_reset, "X-Limit-App-Remaining"), "1");
}

#[tokio::test]
async fn repeats_of_one_delivery_id_are_recorded_as_repeats() {
    let simulator = spawn_simulator().await;
    for body in ["first", "again"] {
        let response = send_form(
            &simulator,
            &message_form(&[("message", body)]),
            Some("repeated"),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    send_form(&simulator, &message_form(&[]), Some("once")).await;

    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["messages"], 3);
    assert_eq!(stats["pushover"]["duplicates"], 1);
    assert_eq!(stats["pushover"]["distinct_references"], 2);
    assert_eq!(
        simulator
            .get_json("/_sim/references?provider=pushover")
            .await,
        json!({"counts": {"repeated": 2, "once": 1}})
    );
    let received = simulator
        .get_json("/_sim/received?provider=pushover&reference=repeated")
        .await;
    let bodies: Vec<&str> = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["first", "again"]);
}

#[tokio::test]
async fn with_idempotency_honoured_a_repeat_gets_the_original_request_id() {
    let simulator = spawn_simulator_with(|config| config.pushover.app_limit = 5).await;
    simulator
        .configure("pushover", json!({"honour_idempotency_reference": true}))
        .await;
    let first = send_form(&simulator, &message_form(&[]), Some("once")).await;
    assert_eq!(header(&first, "X-Limit-App-Remaining"), "4");
    let first: Value = first.json().await.unwrap();
    let repeat = send_form(&simulator, &message_form(&[]), Some("once")).await;
    assert_eq!(
        header(&repeat, "X-Limit-App-Remaining"),
        "4",
        "not sent again"
    );
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(first["request"], repeat["request"]);
    let stats = simulator.stats().await;
    assert_eq!(stats["pushover"]["messages"], 1);
    assert_eq!(stats["pushover"]["idempotent_replays"], 1);
}

#[tokio::test]
async fn other_methods_are_405_and_other_body_types_carry_no_token() {
    let simulator = spawn_simulator().await;
    let get = simulator
        .client
        .get(simulator.url(MESSAGES_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.json::<Value>().await.unwrap()["status"], 0);
    let text = simulator
        .client
        .post(simulator.url(MESSAGES_PATH))
        .header("Content-Type", "text/plain")
        .body(format!(
            "token={PUSHOVER_APP_TOKEN}&user={USER_KEY}&message=hi"
        ))
        .send()
        .await
        .unwrap();
    assert_refused(text, "token", "invalid", "application token is invalid").await;
}
