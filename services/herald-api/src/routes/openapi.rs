//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::provider_callbacks::{sendgrid, twilio};
use super::{cancellation, dead_letters, groups, health, notification_reads, notifications, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", version = "1", description = "Notification ingest and status."),
    paths(
        health::healthz, health::readyz,
        users::put_user, users::get_user,
        super::preferences::put_preferences, super::preferences::get_preferences,
        groups::put_group, groups::get_group, groups::delete_group,
        groups::add_members, groups::remove_members, groups::list_members,
        super::templates::list_templates, super::templates::put_template,
        super::templates::get_template, super::templates::delete_template,
        super::templates::preview_template,
        super::routing_rules::put_routing_rules, super::routing_rules::get_routing_rules,
        notifications::create_notification, notifications::create_notification_batch,
        notification_reads::get_notification, notification_reads::list_notifications,
        super::export::export_notifications,
        cancellation::cancel_notification,
        dead_letters::list_dead_letters, dead_letters::replay_dead_letter,
        sendgrid::receive_sendgrid_events, twilio::receive_twilio_status,
        super::webhooks::create_subscription, super::webhooks::list_subscriptions,
        super::webhooks::delete_subscription,
        super::unsubscribe::unsubscribe_page, super::unsubscribe::unsubscribe,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, herald_domain::FieldError,
        notifications::BatchItemResult,
    )),
    modifiers(&BearerApiKey)
)]
pub struct ApiDoc;

struct BearerApiKey;

impl Modify for BearerApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn openapi_json() -> HttpResponse {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(openapi_document);
    HttpResponse::Ok().json(&*DOCUMENT)
}

/// The document `/openapi.json` serves: utoipa's, with what its attributes cannot say added.
fn openapi_document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON");
    require_a_subject_with_email(&mut document);
    require_a_recipient_or_a_group(&mut document);
    require_content_or_a_template(&mut document);
    document
}

/// A notification names at least one user or one group: the rule between `user_ids` and
/// `group_ids` of `NotificationRequest::validate`, as a JSON Schema `anyOf`.
fn require_a_recipient_or_a_group(document: &mut serde_json::Value) {
    let request = &mut document["components"]["schemas"]["NotificationRequest"];
    debug_assert!(request.is_object(), "NotificationRequest is a component");
    let recipients = serde_json::json!({"anyOf": [
        {"required": ["user_ids"], "properties": {"user_ids": {"type": "array", "minItems": 1}}},
        {"required": ["group_ids"], "properties": {"group_ids": {"type": "array", "minItems": 1}}},
    ]});
    push_all_of(request, recipients);
}

/// A notification has inline `content` or a `template_id`, never both: the rule of
/// `NotificationRequest::validate` as a JSON Schema `oneOf`.
fn require_content_or_a_template(document: &mut serde_json::Value) {
    let request = &mut document["components"]["schemas"]["NotificationRequest"];
    debug_assert!(request.is_object(), "NotificationRequest is a component");
    let content_or_template = serde_json::json!({"oneOf": [
        {"required": ["content"], "properties": {"content": {"type": "object"}},
         "not": {"required": ["template_id"], "properties": {"template_id": {"type": "string"}}}},
        {"required": ["template_id"], "properties": {"template_id": {"type": "string"}},
         "not": {"required": ["content"], "properties": {"content": {"type": "object"}}}},
    ]});
    push_all_of(request, content_or_template);
}

/// Adds `rule` to the schema's `allOf` (each rule between fields is one item of it).
fn push_all_of(schema: &mut serde_json::Value, rule: serde_json::Value) {
    match schema["allOf"].as_array_mut() {
        Some(rules) => rules.push(rule),
        None => schema["allOf"] = serde_json::json!([rule]),
    }
}

/// A notification whose channels include `email` needs a subject that is not blank: a JSON
/// Schema `if`/`then` (OpenAPI 3.1), the same rule as `NotificationRequest::validate`.
fn require_a_subject_with_email(document: &mut serde_json::Value) {
    let request = &mut document["components"]["schemas"]["NotificationRequest"];
    debug_assert!(request.is_object(), "NotificationRequest is a component");
    request["if"] = serde_json::json!({
        "required": ["channels"],
        "properties": {"channels": {"type": "array", "contains": {"const": "email"}}},
    });
    request["then"] = serde_json::json!({
        "properties": {"content": {
            "type": "object",
            "required": ["subject"],
            "properties": {"subject": {
                "type": "string",
                "pattern": herald_domain::request::not_blank_pattern(),
            }},
        }},
    });
}
