//! The simulated SendGrid: authentication, validation with SendGrid's field paths, and success.

use serde_json::{json, Value};

use crate::helpers::{mail_with_reference, spawn_simulator, TestSimulator, API_KEY};

async fn error_fields(simulator: &TestSimulator, body: &Value) -> Vec<Value> {
    let response = simulator.send_mail(body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    body["errors"]
        .as_array()
        .expect("SendGrid's error shape")
        .iter()
        .map(|error| {
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(error["help"], Value::Null);
            error["field"].clone()
        })
        .collect()
}

#[tokio::test]
async fn accepted_mail_gets_202_with_a_message_id_and_is_recorded_with_its_reference() {
    let simulator = spawn_simulator().await;

    let response = simulator
        .send_mail(&mail_with_reference("delivery-1"))
        .await;

    assert_eq!(response.status(), 202);
    let message_id = response
        .headers()
        .get("X-Message-Id")
        .expect("X-Message-Id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(message_id.len(), 22);
    assert!(message_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert!(response.bytes().await.unwrap().is_empty());

    let received = simulator
        .get_json("/_sim/received?provider=sendgrid&reference=delivery-1")
        .await;
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["provider"], "sendgrid");
    assert_eq!(message["reference"], "delivery-1");
    assert_eq!(message["recipient"], "alex@example.com");
    assert_eq!(message["subject"], "Your order shipped");
    assert_eq!(message["body"], "It is on its way.");
    assert_eq!(message["provider_message_id"], message_id.as_str());
    assert!(message["received_at"].as_str().is_some());
}

#[tokio::test]
async fn each_personalization_is_one_send_with_its_own_reference() {
    let simulator = spawn_simulator().await;
    let body = json!({
        "personalizations": [
            {"to": [{"email": "a@example.com"}], "custom_args": {"herald_delivery_id": "own"},
             "subject": "For A"},
            {"to": [{"email": "b@example.com"}, {"email": "c@example.com"}],
             "custom_args": {"herald_delivery_id": "second"}}
        ],
        "from": {"email": "notifications@herald.example"},
        "subject": "For everyone",
        "content": [{"type": "text/plain", "value": "Hello"}]
    });

    assert_eq!(simulator.send_mail(&body).await.status(), 202);

    let received = simulator.get_json("/_sim/received?provider=sendgrid").await;
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["reference"], "own");
    assert_eq!(messages[0]["subject"], "For A");
    assert_eq!(messages[1]["reference"], "second");
    assert_eq!(messages[1]["recipient"], "b@example.com,c@example.com");
    assert_eq!(messages[1]["subject"], "For everyone");
    let stats = simulator.stats().await;
    assert_eq!(stats["sendgrid"]["accepted"], 1);
    assert_eq!(stats["sendgrid"]["messages"], 2);
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_401_in_sendgrids_shape() {
    let simulator = spawn_simulator().await;
    let expected = json!({"errors": [{
        "message": "The provided authorization grant is invalid, expired, or revoked",
        "field": null,
        "help": null
    }]});

    let wrong_key = simulator
        .client
        .post(simulator.url("/v3/mail/send"))
        .bearer_auth("SG.someone-else")
        .json(&mail_with_reference("d"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    assert_eq!(wrong_key.json::<Value>().await.unwrap(), expected);

    let no_key = simulator
        .client
        .post(simulator.url("/v3/mail/send"))
        .json(&mail_with_reference("d"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.json::<Value>().await.unwrap(), expected);

    let stats = simulator.stats().await;
    assert_eq!(stats["sendgrid"]["rejected"], 2);
    assert_eq!(stats["sendgrid"]["accepted"], 0);
}

#[tokio::test]
async fn a_missing_from_is_reported_on_from_email() {
    let simulator = spawn_simulator().await;
    let mut body = mail_with_reference("d");
    body.as_object_mut().unwrap().remove("from");
    assert_eq!(error_fields(&simulator, &body).await, [json!("from.email")]);
}

#[tokio::test]
async fn an_invalid_recipient_address_is_reported_on_its_path() {
    let simulator = spawn_simulator().await;
    let mut body = mail_with_reference("d");
    body["personalizations"][0]["to"][0]["email"] = json!("alex.example.com");
    assert_eq!(
        error_fields(&simulator, &body).await,
        [json!("personalizations.0.to.0.email")]
    );
}

#[tokio::test]
async fn a_missing_subject_is_reported_unless_every_personalization_has_one() {
    let simulator = spawn_simulator().await;
    let mut body = mail_with_reference("d");
    body.as_object_mut().unwrap().remove("subject");
    assert_eq!(error_fields(&simulator, &body).await, [json!("subject")]);

    body["personalizations"][0]["subject"] = json!("Per recipient");
    assert_eq!(simulator.send_mail(&body).await.status(), 202);
}

#[tokio::test]
async fn empty_content_is_reported_on_content() {
    let simulator = spawn_simulator().await;
    let mut body = mail_with_reference("d");
    body["content"] = json!([]);
    assert_eq!(error_fields(&simulator, &body).await, [json!("content")]);

    body["content"] = json!([{"type": "text/plain", "value": ""}]);
    assert_eq!(
        error_fields(&simulator, &body).await,
        [json!("content.0.value")]
    );
}

#[tokio::test]
async fn several_problems_give_one_error_each() {
    let simulator = spawn_simulator().await;
    let body = json!({
        "personalizations": [{"to": [{"email": "nobody"}]}],
        "content": []
    });
    assert_eq!(
        error_fields(&simulator, &body).await,
        [
            json!("personalizations.0.to.0.email"),
            json!("from.email"),
            json!("subject"),
            json!("content")
        ]
    );
}

#[tokio::test]
async fn malformed_json_is_400_in_sendgrids_shape() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .client
        .post(simulator.url("/v3/mail/send"))
        .bearer_auth(API_KEY)
        .header("Content-Type", "application/json")
        .body("{\"personalizations\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], Value::Null);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));
}

#[tokio::test]
async fn other_methods_and_paths_answer_json() {
    let simulator = spawn_simulator().await;
    let response = simulator
        .client
        .get(simulator.url("/v3/mail/send"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.json::<Value>().await.unwrap()["errors"].is_array());

    let response = simulator
        .client
        .get(simulator.url("/v3/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
}
