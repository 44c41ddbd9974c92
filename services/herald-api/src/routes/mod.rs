//! HTTP routes of API version 1.

pub mod cancellation;
pub mod dead_letters;
pub mod export;
pub mod groups;
pub mod health;
pub mod notification_reads;
pub mod notifications;
pub mod openapi;
mod pagination;
pub mod preferences;
pub mod provider_callbacks;
pub mod routing_rules;
pub mod templates;
pub mod unsubscribe;
pub mod users;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// The API's own routes as (method, route template), the labels their HTTP metrics are declared
/// with at start-up. A test checks that each is served under exactly this template.
pub const API_ROUTES: &[(&str, &str)] = &[
    ("PUT", "/v1/users/{user_id}"),
    ("GET", "/v1/users/{user_id}"),
    ("PUT", "/v1/users/{user_id}/preferences"),
    ("GET", "/v1/users/{user_id}/preferences"),
    ("PUT", "/v1/groups/{group_id}"),
    ("GET", "/v1/groups/{group_id}"),
    ("DELETE", "/v1/groups/{group_id}"),
    ("POST", "/v1/groups/{group_id}/members"),
    ("DELETE", "/v1/groups/{group_id}/members"),
    ("GET", "/v1/groups/{group_id}/members"),
    ("GET", "/v1/templates"),
    ("PUT", "/v1/templates/{template_id}"),
    ("GET", "/v1/templates/{template_id}"),
    ("DELETE", "/v1/templates/{template_id}"),
    ("POST", "/v1/templates/{template_id}/preview"),
    ("PUT", "/v1/routing-rules"),
    ("GET", "/v1/routing-rules"),
    ("POST", "/v1/notifications"),
    ("GET", "/v1/notifications"),
    ("POST", "/v1/notifications/batch"),
    ("GET", "/v1/notifications/export"),
    ("GET", "/v1/notifications/{id}"),
    ("POST", "/v1/notifications/{id}/cancel"),
    ("GET", "/v1/dead-letters"),
    ("POST", "/v1/dead-letters/{delivery_id}/replay"),
    ("POST", "/v1/providers/sendgrid/events"),
    ("POST", "/v1/providers/twilio/status"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks"),
    ("DELETE", "/v1/webhooks/{id}"),
    ("GET", "/v1/unsubscribe/{token}"),
    ("POST", "/v1/unsubscribe/{token}"),
];

/// Lists every route's request series and every provider callback series at zero, so dashboards
/// and alerts see them before the first request (beside `metrics::register_all`).
pub fn declare_metrics() {
    use crate::metrics::{HTTP_REQUESTS, HTTP_REQUEST_SECONDS, STATUS_CLASSES};
    provider_callbacks::declare_metrics();
    for (method, route) in API_ROUTES {
        for status_class in STATUS_CLASSES {
            let labels = [*method, *route, *status_class];
            let _ = HTTP_REQUESTS.with_label_values(&labels);
            let _ = HTTP_REQUEST_SECONDS.with_label_values(&labels);
        }
    }
}

/// The public port's routes. `/metrics` and profiles are not among them: they are on the
/// operations port (`server.metrics_port`, herald-telemetry's operations.rs).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(get_only("/healthz").route(web::get().to(health::healthz)))
        .service(get_only("/readyz").route(web::get().to(health::readyz)))
        .service(get_only("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(
            web::resource("/v1/users/{user_id}")
                .route(web::put().to(users::put_user))
                .route(web::get().to(users::get_user))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/users/{user_id}/preferences")
                .route(web::put().to(preferences::put_preferences))
                .route(web::get().to(preferences::get_preferences))
                .default_service(web::to(method_not_allowed)),
        )
        .configure(group_routes)
        .configure(template_routes)
        .service(
            web::resource("/v1/notifications")
                .route(web::post().to(notifications::create_notification))
                .route(web::get().to(notification_reads::list_notifications))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/notifications/batch")
                .route(web::post().to(notifications::create_notification_batch))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/notifications/export")
                .route(web::get().to(export::export_notifications))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/notifications/{id}")
                .route(web::get().to(notification_reads::get_notification))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/notifications/{id}/cancel")
                .route(web::post().to(cancellation::cancel_notification))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/dead-letters")
                .route(web::get().to(dead_letters::list_dead_letters))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/dead-letters/{delivery_id}/replay")
                .route(web::post().to(dead_letters::replay_dead_letter))
                .default_service(web::to(method_not_allowed)),
        )
        .configure(webhook_subscription_routes)
        .configure(routes_without_tenant_key);
}

/// Groups of recipients and their members (docs/DESIGN.md, "Groups: fan-out in the worker").
fn group_routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/groups/{group_id}")
                .route(web::put().to(groups::put_group))
                .route(web::get().to(groups::get_group))
                .route(web::delete().to(groups::delete_group))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/groups/{group_id}/members")
                .route(web::post().to(groups::add_members))
                .route(web::delete().to(groups::remove_members))
                .route(web::get().to(groups::list_members))
                .default_service(web::to(method_not_allowed)),
        );
}

/// Templates and their versions (docs/DESIGN.md, "Templates"), and the routing rules that choose
/// among them ("Routing rules").
fn template_routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/templates")
                .route(web::get().to(templates::list_templates))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/templates/{template_id}")
                .route(web::put().to(templates::put_template))
                .route(web::get().to(templates::get_template))
                .route(web::delete().to(templates::delete_template))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/templates/{template_id}/preview")
                .route(web::post().to(templates::preview_template))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/routing-rules")
                .route(web::put().to(routing_rules::put_routing_rules))
                .route(web::get().to(routing_rules::get_routing_rules))
                .default_service(web::to(method_not_allowed)),
        );
}

/// Tenants' subscriptions to delivery status events (docs/DESIGN.md, "Status events and webhook
/// subscriptions").
fn webhook_subscription_routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/webhooks")
                .route(web::post().to(webhooks::create_subscription))
                .route(web::get().to(webhooks::list_subscriptions))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/webhooks/{id}")
                .route(web::delete().to(webhooks::delete_subscription))
                .default_service(web::to(method_not_allowed)),
        );
}

/// Not authenticated by tenant key: signed by the providers (docs/DESIGN.md, "Provider callbacks"),
/// or by Herald itself.
fn routes_without_tenant_key(config: &mut web::ServiceConfig) {
    use provider_callbacks::{sendgrid, twilio};
    config
        // Signed by Herald itself, and followed by recipients (docs/DESIGN.md, "Unsubscribe links").
        .service(
            web::resource("/v1/unsubscribe/{token}")
                .route(web::get().to(unsubscribe::unsubscribe_page))
                .route(web::post().to(unsubscribe::unsubscribe))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/providers/sendgrid/events")
                .route(web::post().to(sendgrid::receive_sendgrid_events))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(twilio::STATUS_CALLBACK_PATH)
                .route(web::post().to(twilio::receive_twilio_status))
                .default_service(web::to(method_not_allowed)),
        );
}

pub async fn not_found(_request: HttpRequest) -> HttpResponse {
    ApiError::NotFound("route").error_response()
}

/// An operations route, answered 405 for any method but GET (like the API's routes).
fn get_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// 405 with the `Allow` header HTTP requires: the methods [`API_ROUTES`] lists for the route
/// matched, or GET for an operations route.
async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    let route = request.match_pattern();
    let allowed: Vec<&str> = API_ROUTES
        .iter()
        .filter(|(_, template)| route.as_deref() == Some(*template))
        .map(|(method, _)| *method)
        .collect();
    let allow = if allowed.is_empty() {
        "GET".to_owned()
    } else {
        allowed.join(", ")
    };
    let mut response = ApiError::MethodNotAllowed.error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}
