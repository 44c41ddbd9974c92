//! `PUT /_sim/webhook-endpoints/{endpoint}` with `{"secret": "whsec_…"}`: creates the endpoint
//! `/webhooks/{endpoint}` or rotates its secret. Registrations outlive `/_sim/reset`, like the
//! other providers' credentials.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::endpoints::Registration;
use super::signature::signing_key;
use crate::json_error::json_error;
use crate::state::SimulatorState;

pub const REGISTRATION_PATH: &str = "/_sim/webhook-endpoints/{endpoint}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    secret: String,
}

pub fn configure(config: &mut web::ServiceConfig) {
    config.route(REGISTRATION_PATH, web::put().to(register));
}

async fn register(
    state: web::Data<SimulatorState>,
    endpoint: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let endpoint = endpoint.into_inner();
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            return json_error(
                error.as_response_error().status_code(),
                &format!("the registration could not be read: {error}"),
            )
        }
    };
    let registration = match serde_json::from_slice::<RegistrationBody>(&body) {
        Ok(registration) => registration,
        Err(error) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid registration ({error}); expected {{\"secret\": \"whsec_…\"}}"),
            )
        }
    };
    let key = match signing_key(&registration.secret) {
        Ok(key) => key,
        Err(error) => return json_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    match state.webhook_endpoints.register(&endpoint, key) {
        Ok(registration) => {
            // The name only: the secret is never logged.
            tracing::info!(endpoint = %endpoint, ?registration, "webhook endpoint registered");
            HttpResponse::Ok().json(json!({
                "endpoint": endpoint,
                "path": format!("/webhooks/{endpoint}"),
                "replaced": registration == Registration::Replaced
            }))
        }
        Err(error) => json_error(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}
