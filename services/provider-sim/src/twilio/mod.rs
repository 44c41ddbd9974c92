//! The simulated Twilio Programmable Messaging API:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
//!
//! Order of checks, as on the real API: credentials and account (401), then the parameters
//! (400 with Twilio's error codes), then the simulated behaviour (latency, 500, 429, 504) for
//! valid requests only; success is 201 with the Message resource.

mod auth;
pub mod errors;
pub mod message_request;
pub mod message_resource;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use message_request::validate_message_request;
use message_resource::{generate_message_sid, MessageResource};

use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const MESSAGES_PATH: &str = "/2010-04-01/Accounts/{account_sid}/Messages.json";
/// The request header whose value is recorded as the delivery reference.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";
/// A message is at most 1600 characters: 1 MiB is ample.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(MESSAGES_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(create_message))
            .default_service(web::to(errors::method_not_allowed)),
    );
}

async fn create_message(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    path_account_sid: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Twilio);
    let account_sid = state.twilio_account_sid.as_str();
    if !auth::is_authorized(
        &request,
        &path_account_sid,
        account_sid,
        &state.twilio_auth_token,
    ) {
        simulation.reject().await;
        return errors::unauthorized();
    }
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return errors::unreadable_body(&error);
        }
    };
    let form = has_form_content_type(&request).then_some(&body[..]);
    let message = match validate_message_request(form) {
        Ok(message) => message,
        Err(error) => {
            simulation.reject().await;
            return error.response();
        }
    };
    let sid = generate_message_sid();
    let created_at = Utc::now();
    let reference = idempotency_token(&request);
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                body: Some(message.body.clone()),
                provider_message_id: Some(sid.clone()),
                status_callback: message.status_callback.clone(),
                ..DeliveryRecord::new(
                    Provider::Twilio,
                    reference.map(str::to_owned),
                    message.to.clone(),
                    created_at,
                )
            }]
        })
        .await;
    let sid = match admission {
        Admission::Fault { kind, retry_after } => return errors::fault(kind, &retry_after),
        Admission::Accepted => sid,
        Admission::Replayed {
            original_message_id,
        } => original_message_id.unwrap_or(sid),
    };
    HttpResponse::Created().json(MessageResource::queued(
        account_sid,
        &sid,
        &message,
        created_at,
    ))
}

fn has_form_content_type(request: &HttpRequest) -> bool {
    let Some(content_type) = request.headers().get(CONTENT_TYPE) else {
        return false;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

fn idempotency_token(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|token| !token.is_empty())
}
