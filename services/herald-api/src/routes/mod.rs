//! HTTP routes of API version 1.

pub mod health;
pub mod notification_reads;
pub mod notifications;
pub mod openapi;
pub mod users;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// The API's own routes as (method, route template), the labels their HTTP metrics are declared
/// with at start-up. A test checks that each is served under exactly this template.
pub const API_ROUTES: &[(&str, &str)] = &[
    ("PUT", "/v1/users/{user_id}"),
    ("GET", "/v1/users/{user_id}"),
    ("POST", "/v1/notifications"),
    ("GET", "/v1/notifications"),
    ("POST", "/v1/notifications/batch"),
    ("GET", "/v1/notifications/{id}"),
];

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/openapi.json", web::get().to(openapi::openapi_json))
        .configure(herald_telemetry::profiling::configure)
        .service(
            web::resource("/v1/users/{user_id}")
                .route(web::put().to(users::put_user))
                .route(web::get().to(users::get_user))
                .default_service(web::to(method_not_allowed)),
        )
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
            web::resource("/v1/notifications/{id}")
                .route(web::get().to(notification_reads::get_notification))
                .default_service(web::to(method_not_allowed)),
        );
}

pub async fn not_found(_request: HttpRequest) -> HttpResponse {
    ApiError::NotFound("route").error_response()
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.error_response()
}
