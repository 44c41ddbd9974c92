//! The simulated Twilio: authentication, Twilio's validation error codes, and the Message
//! resource answered on success.

use serde_json::Value;

use crate::helpers::{sms_form, spawn_simulator, TestSimulator, ACCOUNT_SID, AUTH_TOKEN};

async fn assert_twilio_error(response: reqwest::Response, status: u16, code: u64) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn send_form(
    simulator: &TestSimulator,
    form: &[(&'static str, String)],
) -> reqwest::Response {
    simulator.send_sms(form, None).await
}

#[tokio::test]
async fn a_created_message_is_201_with_twilios_message_resource() {
    let simulator = spawn_simulator().await;

    let response = simulator
        .send_sms(&sms_form("Your code is 123456"), Some("delivery-7"))
        .await;

    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    let sid = message["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 34);
    assert!(sid.starts_with("SM"));
    assert!(sid[2..]
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(message["account_sid"], ACCOUNT_SID);
    assert_eq!(message["to"], "+14155552345");
    assert_eq!(message["from"], "+14155550000");
    assert_eq!(message["body"], "Your code is 123456");
    assert_eq!(message["status"], "queued");
    assert_eq!(message["num_segments"], "1");
    assert_eq!(message["num_media"], "0");
    assert_eq!(message["direction"], "outbound-api");
    assert_eq!(message["api_version"], "2010-04-01");
    assert_eq!(message["price"], Value::Null);
    assert_eq!(message["error_code"], Value::Null);
    assert_eq!(message["error_message"], Value::Null);
    assert_eq!(message["messaging_service_sid"], Value::Null);
    assert_eq!(
        message["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
    );
    for date in ["date_created", "date_updated"] {
        let text = message[date].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc2822(text).is_ok(),
            "{date} = {text} is not RFC 2822"
        );
    }

    let received = simulator
        .get_json("/_sim/received?provider=twilio&reference=delivery-7")
        .await;
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["recipient"], "+14155552345");
    assert_eq!(messages[0]["body"], "Your code is 123456");
    assert_eq!(messages[0]["provider_message_id"], sid);
    assert_eq!(messages[0]["subject"], Value::Null);
}

/// Herald adds `StatusCallback` when a public base URL is configured: it is recorded for the
/// callback tests, and one that is not an absolute http(s) URL is refused as Twilio refuses it.
#[tokio::test]
async fn a_status_callback_is_recorded_and_a_relative_one_is_21609() {
    let simulator = spawn_simulator().await;
    let callback = "https://herald.example/v1/providers/twilio/status?delivery_id=d-9";
    let mut form = sms_form("Hello");
    form.push(("StatusCallback", callback.to_owned()));
    assert_eq!(simulator.send_sms(&form, Some("d-9")).await.status(), 201);
    let received = simulator
        .get_json("/_sim/received?provider=twilio&reference=d-9")
        .await;
    assert_eq!(received["messages"][0]["status_callback"], callback);

    let mut relative = sms_form("Hello");
    relative.push(("StatusCallback", "/v1/providers/twilio/status".to_owned()));
    assert_twilio_error(send_form(&simulator, &relative).await, 400, 21609).await;
}

#[tokio::test]
async fn segments_are_counted_per_started_160_characters() {
    let simulator = spawn_simulator().await;
    let response = send_form(&simulator, &sms_form(&"x".repeat(161))).await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["num_segments"], "2");
}

#[tokio::test]
async fn a_wrong_token_is_401_authenticate() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .client
        .post(simulator.messages_url(ACCOUNT_SID))
        .basic_auth(ACCOUNT_SID, Some("not-the-token"))
        .form(&sms_form("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401
        })
    );

    let unauthenticated = simulator
        .client
        .post(simulator.messages_url(ACCOUNT_SID))
        .form(&sms_form("hi"))
        .send()
        .await
        .unwrap();
    assert_twilio_error(unauthenticated, 401, 20003).await;
}

#[tokio::test]
async fn an_account_sid_in_the_path_other_than_the_authenticated_one_is_401() {
    let simulator = spawn_simulator().await;
    let other_account = "AC11111111111111111111111111111111";
    let response = simulator
        .client
        .post(simulator.messages_url(other_account))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&sms_form("hi"))
        .send()
        .await
        .unwrap();
    assert_twilio_error(response, 401, 20003).await;
}

#[tokio::test]
async fn a_missing_to_is_21604() {
    let simulator = spawn_simulator().await;
    let form = vec![
        ("From", "+14155550000".to_owned()),
        ("Body", "hi".to_owned()),
    ];
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21604).await;
}

#[tokio::test]
async fn a_to_that_is_not_e164_is_21211() {
    let simulator = spawn_simulator().await;
    let mut form = sms_form("hi");
    form[0].1 = "4155552345".to_owned();
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21211).await;
    form[0].1 = "+04155552345".to_owned();
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21211).await;
}

#[tokio::test]
async fn a_missing_body_is_21602() {
    let simulator = spawn_simulator().await;
    let form = vec![
        ("To", "+14155552345".to_owned()),
        ("From", "+14155550000".to_owned()),
    ];
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21602).await;
}

#[tokio::test]
async fn a_missing_from_without_messaging_service_is_21603() {
    let simulator = spawn_simulator().await;
    let form = vec![("To", "+14155552345".to_owned()), ("Body", "hi".to_owned())];
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21603).await;
}

#[tokio::test]
async fn a_from_that_is_not_e164_is_21212_and_a_long_body_21617() {
    let simulator = spawn_simulator().await;
    let mut form = sms_form("hi");
    form[1].1 = "HERALD SMS".to_owned();
    assert_twilio_error(send_form(&simulator, &form).await, 400, 21212).await;
    let long = sms_form(&"y".repeat(1601));
    assert_twilio_error(send_form(&simulator, &long).await, 400, 21617).await;
    let stats = simulator.stats().await;
    assert_eq!(stats["twilio"]["rejected"], 2);
    assert_eq!(stats["twilio"]["requests"], 2);
}
