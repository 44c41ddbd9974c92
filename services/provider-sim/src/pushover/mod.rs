//! The simulated Pushover Message API: `POST /pushover/1/messages.json`, the path of
//! `https://api.pushover.net/1/messages.json` under `/pushover`.
//!
//! Order of checks: the body (a form or a JSON object), the application token (400 `token`
//! invalid), then the message's parameters (400 naming the parameter), then the application's
//! monthly limit (429), then the simulated behaviour (latency, 500, 429, 504) for valid requests
//! only. Every answer is JSON with `status` (1 on success, 0 otherwise) and a new `request`
//! UUID; success is 200 with the `X-Limit-App-*` headers. Herald's delivery id comes in the
//! `X-Herald-Delivery-Id` header, as for Slack, Discord and Telegram.

pub mod app_limit;
pub mod keys;
pub mod message;
mod parameters;
pub mod responses;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use keys::{generate_receipt, generate_request_id};
use message::{validate_message, PushoverMessage};
use parameters::{read_parameters, Parameters};
use responses::PushoverError;

use crate::behaviour::FaultKind;
use crate::delivery_reference::delivery_id;
use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const MESSAGES_PATH: &str = "/pushover/1/messages.json";
/// A message is at most 1,024 characters: 1 MiB is ample (Pushover takes more only for
/// attachments, which are not modelled).
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(MESSAGES_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(send_message))
            .default_service(web::to(responses::method_not_allowed)),
    );
}

async fn send_message(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Pushover);
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return responses::unreadable_body(&error);
        }
    };
    let message = match read_parameters(&request, &body)
        .and_then(|parameters| validate(&parameters, &state.pushover.app_token))
    {
        Ok(message) => message,
        Err(error) => {
            simulation.reject().await;
            return error.response();
        }
    };
    let usage = &state.pushover.app_usage;
    let received_at = Utc::now();
    let allowance = match usage.take(received_at) {
        Ok(allowance) => allowance,
        Err(over_limit) => {
            simulation.turn_away(FaultKind::RateLimit).await;
            return responses::over_limit(over_limit);
        }
    };
    let request_id = generate_request_id();
    let receipt = message.is_emergency().then(generate_receipt);
    let reference = delivery_id(&request);
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                subject: message.title.clone(),
                body: Some(message.message.clone()),
                provider_message_id: Some(request_id.clone()),
                device: message.device.clone(),
                priority: message.priority,
                ..DeliveryRecord::new(
                    Provider::Pushover,
                    reference,
                    message.user.clone(),
                    received_at,
                )
            }]
        })
        .await;
    match admission {
        Admission::Accepted => responses::accepted(request_id, receipt, allowance),
        // Nothing new was delivered: the message taken from the allowance is given back.
        Admission::Replayed {
            original_message_id,
        } => responses::accepted(
            original_message_id.unwrap_or(request_id),
            receipt,
            usage.give_back(Utc::now()),
        ),
        Admission::Fault { kind, retry_after } => {
            responses::fault(kind, &retry_after, usage.give_back(Utc::now()))
        }
    }
}

/// The token first, then the message.
fn validate(
    parameters: &Parameters,
    app_token: &SecretString,
) -> Result<PushoverMessage, PushoverError> {
    if parameters.get("token") != Some(app_token.expose_secret()) {
        return Err(PushoverError::invalid_token());
    }
    validate_message(parameters)
}
