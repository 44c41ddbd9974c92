//! Routing rules through the API: written whole as versions, each problem a 422 naming its field,
//! a rule's template checked (it exists, and has a part for each of the rule's channels) and its
//! version filled in; every notification is stamped with its tenant's version at acceptance.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn put_rules(app: &TestApp, rules: Value) -> reqwest::Response {
    app.send(
        Method::PUT,
        "/v1/routing-rules",
        Some(json!({ "rules": rules })),
    )
    .await
}

fn fields_of(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {body}"))
        .iter()
        .map(|detail| detail["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rules_are_written_as_versions_checked_and_stamped_on_notifications() {
    let app = spawn_app().await;
    assert_eq!(
        json(app.get("/v1/routing-rules").await).await,
        json!({"version": 0, "rules": []})
    );
    let refused = put_rules(
        &app,
        json!([{"name": "a", "channels": ["sms"],
                "when": [{"field": "cpu", "op": "gte", "value": "high"}]},
               {"name": "a", "channels": []}]),
    )
    .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        fields_of(&json(refused).await),
        [
            "rules[0].when[0].value",
            "rules[1].name",
            "rules[1].channels"
        ]
    );
    let unknown_template = put_rules(
        &app,
        json!([{"name": "page", "channels": ["sms"], "template_id": "page"}]),
    )
    .await;
    assert_eq!(unknown_template.status(), 422);
    assert_eq!(
        fields_of(&json(unknown_template).await),
        ["rules[0].template_id"]
    );
    let created = app
        .send(
            Method::PUT,
            "/v1/templates/page",
            Some(json!({"channels": {"email": {"subject": "Page", "text": "{{ data.service }}"}}})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let no_sms_part = put_rules(
        &app,
        json!([{"name": "page", "channels": ["email", "sms"], "template_id": "page"}]),
    )
    .await;
    assert_eq!(no_sms_part.status(), 422);
    assert_eq!(
        fields_of(&json(no_sms_part).await),
        ["rules[0].channels[1]"]
    );
    assert_eq!(
        json(app.get("/v1/routing-rules").await).await["version"],
        0,
        "refused writes write nothing"
    );

    let rules = json!([
        {"name": "page", "channels": ["email"], "template_id": "page",
         "when": [{"field": "severity", "op": "eq", "value": "critical"}]},
        {"name": "quiet", "channels": ["email"]}
    ]);
    let written = put_rules(&app, rules.clone()).await;
    assert_eq!(written.status(), 200);
    let written = json(written).await;
    assert_eq!(written["version"], 1);
    assert_eq!(
        written["rules"][0]["template_version"], 1,
        "the template's latest version, filled in"
    );
    assert_eq!(
        json(app.get("/v1/routing-rules").await).await["rules"],
        written["rules"]
    );

    app.send(
        Method::PUT,
        "/v1/users/ana",
        Some(json!({"email": "ana@example.com"})),
    )
    .await;
    let notification = json!({"user_ids": ["ana"], "channels": ["email"],
                              "content": {"subject": "Disk", "body": "Disk {{ disk }}"},
                              "data": {"disk": "full"}});
    let first = json(app.post_notification(&notification).await).await;
    assert_eq!(put_rules(&app, json!([])).await.status(), 200);
    let second = json(app.post_notification(&notification).await).await;
    let version_of = |id: &Value| {
        format!(
            "SELECT routing_rules_version::bigint FROM notifications WHERE id = '{}'",
            id["id"].as_str().unwrap()
        )
    };
    assert_eq!(
        app.count(&version_of(&first)).await,
        1,
        "the rules of its acceptance"
    );
    assert_eq!(app.count(&version_of(&second)).await, 2);
    let current = json(app.get("/v1/routing-rules").await).await;
    assert_eq!(
        (&current["version"], &current["rules"]),
        (&json!(2), &json!([]))
    );
}
