//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::provider_callbacks::{sendgrid, twilio};
use super::{cancellation, dead_letters, health, notification_reads, notifications, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", version = "1", description = "Notification ingest and status."),
    paths(
        health::healthz, health::readyz, health::metrics,
        users::put_user, users::get_user,
        notifications::create_notification, notifications::create_notification_batch,
        notification_reads::get_notification, notification_reads::list_notifications,
        cancellation::cancel_notification,
        dead_letters::list_dead_letters, dead_letters::replay_dead_letter,
        sendgrid::receive_sendgrid_events, twilio::receive_twilio_status,
        super::webhooks::create_subscription, super::webhooks::list_subscriptions,
        super::webhooks::delete_subscription,
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
    HttpResponse::Ok().json(ApiDoc::openapi())
}
