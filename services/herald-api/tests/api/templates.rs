//! Templates through the API: versions, the problems a template is refused for, notifications
//! accepted with the version of their time, previews, and the bounds a hostile tenant meets.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

impl TestApp {
    async fn put_template(&self, template_id: &str, definition: Value) -> reqwest::Response {
        self.send(
            Method::PUT,
            &format!("/v1/templates/{template_id}"),
            Some(definition),
        )
        .await
    }

    async fn preview(&self, template_id: &str, body: Value) -> reqwest::Response {
        self.send(
            Method::POST,
            &format!("/v1/templates/{template_id}/preview"),
            Some(body),
        )
        .await
    }
}

fn welcome(greeting: &str) -> Value {
    json!({
        "channels": {
            "email": {"subject": "{{ data.title }}", "text": "{greeting} {{ data.name }}",
                      "html": "<p>{greeting} <b>{{ data.name }}</b></p>"},
            "sms": {"text": "{greeting} {{ data.name }} (sms)"}
        },
        "locales": {
            "pt": {"sms": {"text": "Olá {{ data.name }}"}},
            "pt-BR": {"email": {"subject": "Bem-vindo", "text": "Oi {{ data.name }}"}}
        }
    })
    .to_string()
    .replace("{greeting}", greeting)
    .parse()
    .unwrap()
}

fn templated(template_id: &str, channels: &[&str]) -> Value {
    json!({
        "user_ids": ["u1"],
        "channels": channels,
        "template_id": template_id,
        "data": {"name": "Ana", "title": "Welcome"},
    })
}

fn fields(error: &Value) -> Vec<String> {
    error["error"]["details"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|detail| detail["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_put_writes_the_next_version_and_every_version_is_read_back() {
    let app = spawn_app().await;
    let first = app.put_template("welcome", welcome("Hello")).await;
    assert_eq!(first.status(), 201);
    let first = json(first).await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["definition"]["default_locale"], "en");
    let second = app.put_template("welcome", welcome("Hi")).await;
    assert_eq!(
        second.status(),
        200,
        "a new version of an existing template"
    );
    assert_eq!(json(second).await["version"], 2);

    let latest = json(app.get("/v1/templates/welcome").await).await;
    assert_eq!(latest["version"], 2);
    assert_eq!(
        latest["definition"]["channels"]["sms"]["text"],
        "Hi {{ data.name }} (sms)"
    );
    let old = json(app.get("/v1/templates/welcome?version=1").await).await;
    assert_eq!(
        old["definition"]["channels"]["sms"]["text"],
        "Hello {{ data.name }} (sms)"
    );
    assert_eq!(
        app.get("/v1/templates/welcome?version=3").await.status(),
        404
    );
    assert_eq!(
        app.get("/v1/templates/welcome?version=x").await.status(),
        400
    );
    assert_eq!(app.get("/v1/templates/nope").await.status(), 404);
    assert_eq!(app.get("/v1/templates/a%00b").await.status(), 404);

    app.put_template("alerts", welcome("Alert")).await;
    let page = json(app.get("/v1/templates?limit=1").await).await;
    assert_eq!(page["data"][0]["template_id"], "alerts");
    let next = page["next_cursor"].as_str().unwrap();
    let page = json(
        app.get(&format!("/v1/templates?limit=1&after={next}"))
            .await,
    )
    .await;
    assert_eq!(page["data"][0]["template_id"], "welcome");
    assert_eq!(page["data"][0]["latest_version"], 2);
    assert!(page.get("next_cursor").is_none());

    let deleted = app
        .send(Method::DELETE, "/v1/templates/welcome", None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get("/v1/templates/welcome").await.status(), 404);
    let again = app
        .send(Method::DELETE, "/v1/templates/welcome", None)
        .await;
    assert_eq!(again.status(), 404);
    // Written again: a template anew, numbered after the versions kept for accepted notifications.
    let recreated = app.put_template("welcome", welcome("Hey")).await;
    assert_eq!(recreated.status(), 201);
    assert_eq!(json(recreated).await["version"], 3);
}

#[tokio::test]
async fn every_problem_of_a_template_is_a_422_naming_its_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"channels": {"sms": {"text": "{{ unclosed"}}}),
            "channels.sms.text",
        ),
        (json!({"channels": {"fax": {"text": "x"}}}), "channels.fax"),
        (
            json!({"channels": {"sms": {"text": "a\u{0}b"}}}),
            "channels.sms.text",
        ),
        (
            json!({"channels": {"sms": {"text": "{{ 'x' * 100000000 }}"}}}),
            "channels.sms.text",
        ),
        (
            json!({"channels": {"sms": {"text": "{{ data.a ~ data.a }}"}}}),
            "channels.sms.text",
        ),
        (
            json!({"channels": {"sms": {"text": "x", "html": "<p>x</p>"}}}),
            "channels.sms.html",
        ),
        (
            json!({"channels": {"email": {"text": "x"}}}),
            "channels.email.subject",
        ),
        (
            json!({"channels": {"sms": {"text": "  "}}}),
            "channels.sms.text",
        ),
        (json!({"channels": {}}), "channels"),
        (
            json!({"default_locale": "english", "channels": {"sms": {"text": "x"}}}),
            "default_locale",
        ),
        (
            json!({"channels": {"sms": {"text": "x"}}, "locales": {"pt_BR": {"sms": {"text": "x"}}}}),
            "locales.pt_BR",
        ),
        (
            json!({"channels": {"sms": {"text": "x"}}, "locales": {"pt": {"email": {"subject": "s", "text": "x"}}}}),
            "locales.pt.email",
        ),
        (
            json!({"channels": {"sms": {"text": "x".repeat(70_000)}}}),
            "channels.sms.text",
        ),
    ];
    for (definition, field) in cases {
        let response = app.put_template("t", definition.clone()).await;
        assert_eq!(response.status(), 422, "{definition}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        assert!(fields(&body).contains(&field.to_owned()), "{field}: {body}");
    }
    // Not a template document at all: the parser's 422 naming the field.
    let response = app
        .put_template("t", json!({"channels": {"sms": {"body": "x"}}}))
        .await;
    assert_eq!(response.status(), 422);
    let response = app.put_template("a\u{1}b", welcome("Hi")).await;
    assert_eq!(response.status(), 422);
    assert_eq!(app.count("SELECT count(*) FROM templates").await, 0);
}

#[tokio::test]
async fn a_notification_renders_the_version_of_its_acceptance_and_names_what_is_wrong() {
    let app = spawn_app().await;
    app.put_template("welcome", welcome("Hello")).await;

    let accepted = app
        .post_notification(&templated("welcome", &["email", "sms"]))
        .await;
    assert_eq!(accepted.status(), 202);
    let id = json(accepted).await["id"].as_str().unwrap().to_owned();
    app.put_template("welcome", welcome("Hi")).await;
    let read = json(app.get(&format!("/v1/notifications/{id}")).await).await;
    assert_eq!(read["content"]["template_id"], "welcome");
    assert_eq!(
        read["content"]["template_version"], 1,
        "the latest when it was accepted"
    );
    let later = json(app.post_notification(&templated("welcome", &["sms"])).await).await;
    let later = json(
        app.get(&format!(
            "/v1/notifications/{}",
            later["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(later["content"]["template_version"], 2);
    let mut pinned = templated("welcome", &["sms"]);
    pinned["template_version"] = json!(1);
    let pinned = json(app.post_notification(&pinned).await).await;
    let pinned = json(
        app.get(&format!(
            "/v1/notifications/{}",
            pinned["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(pinned["content"]["template_version"], 1);

    let refused = |body: Value, field: &'static str| {
        let app = &app;
        async move {
            let response = app.post_notification(&body).await;
            assert_eq!(response.status(), 422, "{body}");
            let error = json(response).await;
            assert!(
                fields(&error).contains(&field.to_owned()),
                "{field}: {error}"
            );
        }
    };
    refused(templated("nope", &["sms"]), "template_id").await;
    let mut no_version = templated("welcome", &["sms"]);
    no_version["template_version"] = json!(9);
    refused(no_version, "template_version").await;
    refused(templated("welcome", &["sms", "slack"]), "channels[1]").await;
    let mut both = templated("welcome", &["sms"]);
    both["content"] = json!({"body": "x"});
    refused(both, "template_id").await;
    let mut neither = templated("welcome", &["sms"]);
    neither.as_object_mut().unwrap().remove("template_id");
    refused(neither, "content").await;
    let mut bad_version = templated("welcome", &["sms"]);
    bad_version["template_version"] = json!(0);
    refused(bad_version, "template_version").await;

    // A deleted template is refused to new notifications; accepted ones keep theirs.
    app.send(Method::DELETE, "/v1/templates/welcome", None)
        .await;
    refused(templated("welcome", &["sms"]), "template_id").await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM notifications WHERE id = '{id}' AND template_version = 1"
        ))
        .await,
        1
    );

    // In a batch, only the item naming what the tenant lacks is refused.
    app.put_template("welcome", welcome("Hey")).await;
    let batch = app
        .post_json(
            "/v1/notifications/batch",
            &json!({"notifications": [templated("welcome", &["sms"]), templated("nope", &["sms"])]}),
        )
        .await;
    assert_eq!(batch.status(), 202);
    let batch = json(batch).await;
    assert_eq!(batch["accepted"], 1);
    assert_eq!(
        batch["results"][1]["error"]["details"][0]["field"],
        "notifications[1].template_id"
    );
}

#[tokio::test]
async fn a_preview_renders_each_channel_in_the_users_locale_and_names_a_missing_variable() {
    let app = spawn_app().await;
    app.put_template("welcome", welcome("Hello")).await;
    let user = app
        .send(
            Method::PUT,
            "/v1/users/ana",
            Some(json!({"email": "ana@example.com", "locale": "pt-BR"})),
        )
        .await;
    assert!(user.status().is_success());

    let preview = app
        .preview(
            "welcome",
            json!({"user_id": "ana", "data": {"name": "<Ana>", "title": "T"}}),
        )
        .await;
    assert_eq!(preview.status(), 200);
    let preview = json(preview).await;
    assert_eq!(preview["version"], 1);
    assert_eq!(preview["messages"]["email"]["locale"], "pt-BR");
    assert_eq!(preview["messages"]["email"]["text"], "Oi <Ana>");
    assert_eq!(
        preview["messages"]["sms"]["locale"], "pt",
        "pt-BR has no sms part"
    );
    assert_eq!(preview["messages"]["sms"]["text"], "Olá <Ana>");

    let english = json(
        app.preview(
            "welcome",
            json!({"locale": "en-GB", "data": {"name": "<Ana>", "title": "T"}}),
        )
        .await,
    )
    .await;
    assert_eq!(english["messages"]["email"]["subject"], "T");
    assert_eq!(
        english["messages"]["email"]["html"],
        "<p>Hello <b>&lt;Ana&gt;</b></p>"
    );

    let missing = app
        .preview("welcome", json!({"data": {"name": "Ana"}}))
        .await;
    assert_eq!(missing.status(), 422);
    let missing = json(missing).await;
    let problem = missing["error"]["details"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("email") && problem.contains("`data.title`"),
        "{missing}"
    );

    let unknown_user = app.preview("welcome", json!({"user_id": "nobody"})).await;
    assert_eq!(unknown_user.status(), 422);
    assert_eq!(fields(&json(unknown_user).await), vec!["user_id"]);
    assert_eq!(app.preview("nope", json!({})).await.status(), 404);
    let old = app.preview("welcome", json!({"version": 7})).await;
    assert_eq!(old.status(), 404);
    let bad_locale = app.preview("welcome", json!({"locale": "x\u{0}"})).await;
    assert_eq!(bad_locale.status(), 422);
}

#[tokio::test]
async fn a_tenant_is_bounded_in_templates_and_versions() {
    let app = spawn_app_with(|settings| {
        settings.templates.max_per_tenant = 2;
        settings.templates.max_versions = 3;
    })
    .await;
    for template_id in ["a", "b"] {
        assert_eq!(
            app.put_template(template_id, welcome("x")).await.status(),
            201
        );
    }
    let third = app.put_template("c", welcome("x")).await;
    assert_eq!(third.status(), 409);
    assert_eq!(json(third).await["error"]["code"], "limit_reached");
    // New versions of the ones it has are not new templates.
    assert_eq!(app.put_template("a", welcome("y")).await.status(), 200);
    assert_eq!(app.put_template("a", welcome("z")).await.status(), 200);
    let fourth_version = app.put_template("a", welcome("w")).await;
    assert_eq!(fourth_version.status(), 409);
    // A deleted one frees its place.
    app.send(Method::DELETE, "/v1/templates/b", None).await;
    assert_eq!(app.put_template("c", welcome("x")).await.status(), 201);
    assert_eq!(
        app.count("SELECT count(*) FROM template_heads WHERE NOT deleted")
            .await,
        2
    );
}
