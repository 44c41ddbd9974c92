//! The simulated SendGrid Mail Send v3 API: `POST /v3/mail/send`.
//!
//! Order of checks, as on the real API: credentials (401), then the body (400), then the
//! simulated behaviour (latency, 500, 429, 504) for valid requests only; success is 202 with an
//! empty body and `X-Message-Id`.

mod addresses;
mod auth;
pub mod errors;
mod message_id;
mod personalizations;
mod problems;
pub mod validation;
#[cfg(test)]
mod validation_tests;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

pub use message_id::generate_message_id;
use validation::{validate_mail, ValidatedMail};

use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const MAIL_SEND_PATH: &str = "/v3/mail/send";
/// SendGrid refuses messages larger than 30 MB.
const MAX_BODY_BYTES: usize = 30 * 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(MAIL_SEND_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(send_mail))
            .default_service(web::to(errors::method_not_allowed)),
    );
}

async fn send_mail(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::SendGrid);
    if !auth::is_authorized(&request, &state.sendgrid_api_key) {
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
    if !has_json_content_type(&request) {
        simulation.reject().await;
        return errors::wrong_content_type();
    }
    let document: Value = match serde_json::from_slice(&body) {
        Ok(document) => document,
        Err(error) => {
            simulation.reject().await;
            return errors::malformed_json(&error);
        }
    };
    let now = Utc::now();
    let mail = match validate_mail(&document) {
        Ok(mail) => mail,
        Err(problems) => {
            simulation.reject().await;
            return errors::bad_request(&problems);
        }
    };
    let message_id = generate_message_id();
    let admission = simulation
        .admit(|| delivery_records(&mail, &message_id, now))
        .await;
    match admission {
        Admission::Fault { kind, retry_after } => errors::fault(kind, &retry_after),
        Admission::Accepted => HttpResponse::Accepted()
            .insert_header(("X-Message-Id", message_id))
            .finish(),
        Admission::Replayed {
            original_message_id,
        } => HttpResponse::Accepted()
            .insert_header(("X-Message-Id", original_message_id.unwrap_or(message_id)))
            .finish(),
    }
}

fn has_json_content_type(request: &HttpRequest) -> bool {
    let Some(content_type) = request.headers().get(CONTENT_TYPE) else {
        return false;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
}

/// One record per personalization: each is a separate message to its own recipients.
fn delivery_records(
    mail: &ValidatedMail<'_>,
    message_id: &str,
    received_at: chrono::DateTime<Utc>,
) -> Vec<DeliveryRecord> {
    mail.personalizations
        .iter()
        .map(|personalization| DeliveryRecord {
            subject: personalization.subject.or(mail.subject).map(str::to_owned),
            body: mail.body.map(str::to_owned),
            html: mail.html.map(str::to_owned),
            headers: mail.headers.clone(),
            provider_message_id: Some(message_id.to_owned()),
            custom_args: personalization.recorded_custom_args(),
            ..DeliveryRecord::new(
                Provider::SendGrid,
                personalization.reference.map(str::to_owned),
                personalization.recipients.join(","),
                received_at,
            )
        })
        .collect()
}
