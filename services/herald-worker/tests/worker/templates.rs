//! Templates end to end: the worker renders the version a notification was accepted with, per
//! channel and in each recipient's locale, sends the email's HTML beside its text, and records a
//! missing variable as the delivery's failure without calling the provider.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

async fn put_template(stack: &Stack, template_id: &str, definition: Value) -> Value {
    let response = stack
        .client
        .put(format!("{}/v1/templates/{template_id}", stack.api))
        .bearer_auth(&stack.api_key)
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    response.json().await.unwrap()
}

fn greeting(word: &str) -> Value {
    json!({
        "channels": {
            "email": {"subject": "{{ data.title }}", "text": format!("{word} {{{{ data.name }}}}"),
                      "html": format!("<p>{word} <b>{{{{ data.name }}}}</b></p>")},
            "sms": {"text": format!("{word} {{{{ data.name }}}} #{{{{ recipient.id }}}}")}
        },
        "locales": {
            "pt": {"sms": {"text": "Olá {{ data.name }}"}},
            "pt-BR": {"email": {"subject": "Bem-vindo", "text": "Oi {{ data.name }}"}}
        }
    })
}

fn received_by(records: &Value, recipient: &str) -> Value {
    records["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["recipient"] == recipient)
        .unwrap_or_else(|| panic!("nothing received for {recipient}: {records}"))
        .clone()
}

#[tokio::test]
async fn each_recipient_gets_the_accepted_version_in_their_locale_with_html_beside_the_text() {
    let stack = start_stack(None).await;
    stack
        .put_user(
            "ana",
            json!({"email": "ana@example.com", "phone": "+14155550101", "locale": "pt-BR"}),
        )
        .await;
    stack
        .put_user(
            "jo",
            json!({"email": "jo@example.com", "phone": "+14155550102", "locale": "pt-PT"}),
        )
        .await;
    stack
        .put_user(
            "max",
            json!({"email": "max@example.com", "phone": "+14155550103", "locale": "de"}),
        )
        .await;
    put_template(&stack, "welcome", greeting("Hello")).await;
    let id = stack
        .notify(json!({
            "user_ids": ["ana", "jo", "max"],
            "channels": ["email", "sms"],
            "template_id": "welcome",
            "data": {"name": "<Kim>", "title": "Welcome"},
        }))
        .await;
    // Edited after the notification was accepted, before any worker ran: not what it sends.
    put_template(&stack, "welcome", greeting("Bye")).await;

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered", "{view}");

    let emails = stack.received("sendgrid").await;
    let ana = received_by(&emails, "ana@example.com");
    assert_eq!(ana["subject"], "Bem-vindo");
    assert_eq!(ana["body"], "Oi <Kim>");
    assert!(ana.get("html").is_none(), "pt-BR has no HTML part: {ana}");
    let jo = received_by(&emails, "jo@example.com");
    assert_eq!(
        jo["subject"], "Welcome",
        "pt has no email part: the default's"
    );
    assert_eq!(jo["body"], "Hello <Kim>");
    assert_eq!(
        jo["html"], "<p>Hello <b>&lt;Kim&gt;</b></p>",
        "escaped in HTML only"
    );

    let texts = stack.received("twilio").await;
    assert_eq!(received_by(&texts, "+14155550101")["body"], "Olá <Kim>");
    assert_eq!(received_by(&texts, "+14155550102")["body"], "Olá <Kim>");
    assert_eq!(
        received_by(&texts, "+14155550103")["body"],
        "Hello <Kim> #max"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_missing_variable_fails_its_delivery_naming_it_and_no_provider_is_called() {
    let stack = start_stack(None).await;
    stack
        .put_user(
            "ana",
            json!({"email": "ana@example.com", "phone": "+14155550101"}),
        )
        .await;
    put_template(&stack, "welcome", greeting("Hello")).await;
    let missing_variables_before = herald_worker::metrics::TEMPLATE_RENDER_FAILURES
        .with_label_values(&["missing_variable"])
        .get();
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    // No `title`: the email's subject cannot render; the SMS does not use it.
    let id = stack
        .notify(json!({
            "user_ids": ["ana"],
            "channels": ["email", "sms"],
            "template_id": "welcome",
            "data": {"name": "Kim"},
        }))
        .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    let deliveries = view["deliveries"].as_array().unwrap();
    let email = deliveries
        .iter()
        .find(|delivery| delivery["channel"] == "email")
        .unwrap();
    assert_eq!(email["status"], "failed", "{view}");
    assert_eq!(email["attempts"], 1, "not retried: {email}");
    let error = email["last_error"].as_str().unwrap();
    assert!(
        error.contains("missing variable `data.title`")
            && error.contains("template `welcome` version 1"),
        "{error}"
    );
    let sms = deliveries
        .iter()
        .find(|delivery| delivery["channel"] == "sms")
        .unwrap();
    assert_eq!(sms["status"], "sent", "{view}");
    let stats = stack.simulator_stats().await;
    assert_eq!(
        stats["sendgrid"]["messages"], 0,
        "no call for a message that did not render: {stats}"
    );
    assert_eq!(stats["twilio"]["messages"], 1);

    let failures = herald_worker::metrics::TEMPLATE_RENDER_FAILURES
        .with_label_values(&["missing_variable"])
        .get();
    assert!(failures > missing_variables_before, "counted: {failures}");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// A hostile tenant's template runs out of fuel on every delivery (a loop in a loop over 64 KiB
/// of data): each of its deliveries fails naming the bound, without a call, and another tenant's
/// notifications, sent at the same time, are all delivered.
#[tokio::test]
async fn a_template_that_runs_out_of_fuel_fails_its_own_deliveries_and_no_one_elses() {
    const EACH: usize = 100;
    let stack = start_stack(None).await;
    stack.insert_users(EACH).await;
    let (_, attacker_key) = stack.create_other_tenant("attacker").await;
    let attacker = |path: &str| {
        stack
            .client
            .request(reqwest::Method::PUT, format!("{}{path}", stack.api))
            .bearer_auth(&attacker_key)
    };
    let response = attacker("/v1/templates/spin")
        .json(&json!({"channels": {"sms": {"text":
            "{% for a in data.items %}{% for b in data.items %}{{ b }}{% endfor %}{% endfor %}"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for index in 0..EACH {
        let response = attacker(&format!("/v1/users/attacked-{index}"))
            .json(&json!({"phone": format!("+1415666{index:04}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let hostile = json!({"items": vec![0; 30_000]});
    for index in 0..EACH {
        let response = stack
            .client
            .post(format!("{}/v1/notifications", stack.api))
            .bearer_auth(&attacker_key)
            .json(
                &json!({"user_ids": [format!("attacked-{index}")], "channels": ["sms"],
                          "template_id": "spin", "data": hostile}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    stack.notify_each_user(0..EACH, "sms").await;

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status IN ('sent', 'failed')",
            2 * EACH as i64,
            Duration::from_secs(120),
        )
        .await;
    let tenant = stack.tenant_id;
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM deliveries WHERE tenant_id = '{tenant}' AND status = 'sent'"
            ))
            .await,
        EACH as i64,
        "every delivery of the other tenant was sent"
    );
    assert_eq!(
        stack
            .count(
                "SELECT count(*) FROM deliveries WHERE status = 'failed' \
                 AND last_error LIKE '%used more than 20000 steps%'"
            )
            .await,
        EACH as i64,
        "every hostile render stopped at its fuel"
    );
    let stats = stack.simulator_stats().await;
    assert_eq!(
        stats["twilio"]["messages"], EACH,
        "no call for a message that did not render: {stats}"
    );
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
