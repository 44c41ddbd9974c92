//! The simulated Discord webhooks: `POST /discord/api/webhooks/{webhook.id}/{webhook.token}`,
//! the path of `https://discord.com/api/webhooks/…` under `/discord`.
//!
//! Order of checks, as on the real API: the webhook (404 `Unknown Webhook`), the query string,
//! then the body (400 with Discord's error codes), then the simulated behaviour (latency, 500,
//! 429, 504) for valid requests only. Success is 204 No Content, or with `?wait=true` 200 and
//! the created message, whose `id` Herald keeps.

mod created_message;
mod payload;
pub mod responses;
mod snowflake;
mod wait_parameter;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use payload::validate_message;
use responses::DiscordError;
use wait_parameter::wait_parameter;

use crate::delivery_reference::delivery_id;
use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const EXECUTE_WEBHOOK_PATH: &str = "/discord/api/webhooks/{webhook_id}/{token}";
/// The token that stands for a deleted webhook (404 `Unknown Webhook`); any other is accepted.
pub const INVALID_TOKEN: &str = "invalid";
/// A JSON message is at most 2,000 characters: 1 MiB is ample (Discord takes more only for file
/// uploads, which Herald does not send).
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(EXECUTE_WEBHOOK_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(execute_webhook))
            .default_service(web::to(responses::method_not_allowed)),
    );
}

async fn execute_webhook(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Discord);
    let (webhook_id, token) = path.into_inner();
    if !snowflake::is_snowflake(&webhook_id) || token == INVALID_TOKEN {
        simulation.reject().await;
        return DiscordError::unknown_webhook().response();
    }
    let wait = match wait_parameter(request.query_string()) {
        Ok(wait) => wait,
        Err(error) => {
            simulation.reject().await;
            return error.response();
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return responses::unreadable_body(&error);
        }
    };
    let message = match validate_message(&body) {
        Ok(message) => message,
        Err(error) => {
            simulation.reject().await;
            return error.response();
        }
    };
    let received_at = Utc::now();
    let message_id = snowflake::generate(received_at);
    let reference = delivery_id(&request);
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                body: Some(message.content.clone()),
                provider_message_id: Some(message_id.clone()),
                ..DeliveryRecord::new(
                    Provider::Discord,
                    reference,
                    webhook_id.clone(),
                    received_at,
                )
            }]
        })
        .await;
    let message_id = match admission {
        Admission::Fault { kind, retry_after } => {
            return responses::fault(kind, &retry_after, &webhook_id)
        }
        Admission::Accepted => message_id,
        Admission::Replayed {
            original_message_id,
        } => original_message_id.unwrap_or(message_id),
    };
    if !wait {
        return HttpResponse::NoContent().finish();
    }
    HttpResponse::Ok().json(created_message::created_message(
        &message_id,
        &webhook_id,
        &message,
        received_at,
    ))
}
