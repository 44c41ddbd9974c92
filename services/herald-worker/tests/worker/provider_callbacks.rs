//! Provider callbacks end to end: the worker's SendGrid request carries the delivery's key in
//! `custom_args`, its Twilio request a `StatusCallback` URL naming the delivery under the public
//! base URL (as the simulator, which validates both, received them); a callback built from exactly
//! what the provider received, and signed as the provider signs, moves the delivery at the API.

use std::time::Duration;

use herald_testing::provider_signatures::{twilio_signature, SendGridSigner};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::*;

/// Where Twilio would reach the API: a proxy's address, not the one the test calls.
const PUBLIC_BASE_URL: &str = "https://herald.example.com";

/// The one message the simulator recorded for `provider`.
async fn only_message(stack: &Stack, provider: &str) -> Value {
    let received = stack.received(provider).await;
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{received}");
    messages[0].clone()
}

fn delivery_of(view: &Value, channel: &str) -> Value {
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|delivery| delivery["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} delivery: {view}"))
        .clone()
}

#[tokio::test]
async fn sends_carry_their_delivery_key_and_the_providers_callbacks_move_them() {
    let signer = SendGridSigner::generate();
    let public_key = signer.public_key_base64();
    let stack = start_stack_with(None, None, |settings| {
        settings.providers.sendgrid.event_webhook_public_key = public_key;
        settings.providers.twilio.status_callback_base_url = format!("{PUBLIC_BASE_URL}/");
    })
    .await;
    stack.insert_users(1).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(alert(&["user-0"], &["email", "sms"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let email = delivery_of(&view, "email");
    let sms = delivery_of(&view, "sms");

    // What SendGrid received: both halves of the delivery's key as custom args.
    let mail = only_message(&stack, "sendgrid").await;
    assert_eq!(mail["custom_args"]["herald_notification_id"], id);
    assert_eq!(mail["custom_args"]["herald_delivery_id"], email["id"]);
    // What Twilio received: a status callback URL under the public base URL naming the delivery
    // (the trailing `/` of the setting is not doubled).
    let text = only_message(&stack, "twilio").await;
    let callback_url = text["status_callback"].as_str().unwrap().to_owned();
    assert_eq!(
        callback_url,
        format!(
            "{PUBLIC_BASE_URL}/v1/providers/twilio/status?notification_id={id}&delivery_id={}",
            sms["id"].as_str().unwrap()
        )
    );

    // SendGrid reports the email delivered: the event carries the custom args as top-level fields.
    let mut event = json!({
        "email": "user0@example.com",
        "timestamp": chrono::Utc::now().timestamp(),
        "event": "delivered",
        "sg_message_id": mail["provider_message_id"],
        "response": "250 OK",
    });
    event
        .as_object_mut()
        .unwrap()
        .extend(mail["custom_args"].as_object().unwrap().clone());
    let body = serde_json::to_vec(&json!([event])).unwrap();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = stack
        .client
        .post(format!("{}/v1/providers/sendgrid/events", stack.api))
        .header("content-type", "application/json")
        .header("X-Twilio-Email-Event-Webhook-Timestamp", &timestamp)
        .header(
            "X-Twilio-Email-Event-Webhook-Signature",
            signer.sign(&timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{:?}", response.text().await);

    // Twilio reports the text undelivered, at the URL it was given, through a proxy.
    let message_sid = text["provider_message_id"].as_str().unwrap();
    let parameters = [
        (
            "AccountSid",
            stack.settings.providers.twilio.account_sid.as_str(),
        ),
        ("MessageSid", message_sid),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("To", "+14155550000"),
    ];
    let signature = twilio_signature(
        stack.settings.providers.twilio.auth_token.expose_secret(),
        &callback_url,
        &parameters,
    );
    let path_and_query = callback_url.strip_prefix(PUBLIC_BASE_URL).unwrap();
    let response = stack
        .client
        .post(format!("{}{path_and_query}", stack.api))
        .header("X-Twilio-Signature", signature)
        .form(&parameters)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{:?}", response.text().await);

    let view = stack.notification(&id).await;
    assert_eq!(delivery_of(&view, "email")["status"], "delivered");
    let sms = delivery_of(&view, "sms");
    assert_eq!(sms["status"], "failed");
    assert_eq!(sms["last_error"], "twilio undelivered: error 30003");
    // The notification counted what Herald handed over; the reports do not change that.
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["delivery_summary"]["sent"], 2);
    assert_eq!(view["delivery_summary"]["failed"], 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn without_a_public_base_url_twilio_sends_ask_for_no_status_callback() {
    let stack = start_stack(None).await;
    stack.insert_users(1).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(alert(&["user-0"], &["sms"])).await;
    stack.wait_until_final(&id, Duration::from_secs(30)).await;
    let text = only_message(&stack, "twilio").await;
    assert!(text.get("status_callback").is_none(), "{text}");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
