//! Routing rules evaluated by the worker: the first rule whose conditions hold on a notification's
//! `data` chooses its channels (its other deliveries are skipped, naming the rule) and its
//! template; a notification is routed by the rules of its acceptance, not those written since.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

async fn put(stack: &Stack, path: &str, body: Value) {
    let response = stack
        .client
        .put(format!("{}{path}", stack.api))
        .bearer_auth(&stack.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {:?}",
        response.text().await
    );
}

fn delivery_on<'a>(view: &'a Value, channel: &str) -> &'a Value {
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|delivery| delivery["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} delivery: {view}"))
}

#[tokio::test]
async fn the_first_matching_rule_chooses_channels_and_template_as_of_acceptance() {
    let stack = start_stack(None).await;
    stack
        .put_user(
            "ana",
            json!({"email": "ana@example.com", "phone": "+14155550401"}),
        )
        .await;
    put(
        &stack,
        "/v1/templates/page",
        json!({"channels": {
            "sms": {"text": "PAGE {{ data.service }}"},
            "email": {"subject": "Paged: {{ data.service }}", "text": "{{ data.service }} is down"}
        }}),
    )
    .await;
    put(
        &stack,
        "/v1/routing-rules",
        json!({"rules": [
            {"name": "page-on-critical", "channels": ["sms", "email"], "template_id": "page",
             "when": [{"field": "severity", "op": "eq", "value": "critical"},
                      {"field": "metrics.errors", "op": "gte", "value": 10}]},
            {"name": "email-only", "channels": ["email"]}
        ]}),
    )
    .await;
    let alert = |severity: &str, errors: i64| {
        json!({
            "user_ids": ["ana"],
            "channels": ["email", "sms"],
            "content": {"subject": "Inline", "body": "Inline {{service}}"},
            "data": {"severity": severity, "service": "checkout", "metrics": {"errors": errors}},
        })
    };
    let critical = stack.notify(alert("critical", 12)).await;
    let minor = stack.notify(alert("critical", 3)).await;
    // Rules written after those were accepted apply only to what is accepted next.
    put(
        &stack,
        "/v1/routing-rules",
        json!({"rules": [{"name": "sms-only", "channels": ["sms"]}]}),
    )
    .await;
    let later = stack.notify(alert("critical", 12)).await;

    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let critical = stack
        .wait_until_final(&critical, Duration::from_secs(60))
        .await;
    let minor = stack
        .wait_until_final(&minor, Duration::from_secs(60))
        .await;
    let later = stack
        .wait_until_final(&later, Duration::from_secs(60))
        .await;

    assert_eq!(
        delivery_on(&critical, "sms")["status"],
        "sent",
        "{critical}"
    );
    assert_eq!(
        delivery_on(&critical, "email")["status"],
        "sent",
        "{critical}"
    );
    assert_eq!(delivery_on(&minor, "email")["status"], "sent", "{minor}");
    assert_eq!(delivery_on(&minor, "sms")["status"], "skipped");
    assert_eq!(
        delivery_on(&minor, "sms")["last_error"],
        "the routing rule `email-only` does not route to sms"
    );
    assert_eq!(delivery_on(&later, "sms")["status"], "sent", "{later}");
    assert_eq!(
        delivery_on(&later, "email")["last_error"],
        "the routing rule `sms-only` does not route to email"
    );

    let texts = stack.received("twilio").await;
    let mut bodies: Vec<&str> = texts["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["Inline checkout", "PAGE checkout"], "{texts}");
    let emails = stack.received("sendgrid").await;
    let mut subjects: Vec<&str> = emails["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["subject"].as_str().unwrap())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Inline", "Paged: checkout"], "{emails}");

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
