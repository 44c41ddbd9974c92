//! A customer's endpoint receiving Herald's signed webhooks, per the Standard Webhooks
//! specification (standardwebhooks.com): `POST /webhooks/{endpoint}`.
//!
//! An endpoint exists once its secret is registered (`PUT /_sim/webhook-endpoints/{endpoint}`).
//! Order of checks, as a careful receiver makes them: the endpoint (404), the signature over the
//! raw body and the timestamp's freshness (401), the body being JSON (400), then the simulated
//! behaviour (latency, 500, 429, 504) for verified requests only. Success is 200. The
//! `webhook-id` is recorded as the reference: it is the same on every retry of one message, so a
//! receiver (and an exactly-once proof) deduplicates by it.

pub mod endpoints;
mod registration;
pub mod responses;
pub mod signature;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

pub use endpoints::WebhookEndpoints;
use signature::{signed_headers, verify};

use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const RECEIVER_PATH: &str = "/webhooks/{endpoint}";
/// Standard Webhooks advises small payloads; 1 MiB leaves room for any event Herald sends.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource(RECEIVER_PATH)
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .route(web::post().to(receive))
                .default_service(web::to(responses::method_not_allowed)),
        )
        .configure(registration::configure);
}

async fn receive(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    endpoint: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Webhook);
    let endpoint = endpoint.into_inner();
    let Some(signing_key) = state.webhook_endpoints.signing_key(&endpoint) else {
        simulation.reject().await;
        return responses::unknown_endpoint(&endpoint);
    };
    // The raw bytes as received: the signature is over them, never over a re-serialization.
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return responses::unreadable_body(&error);
        }
    };
    let verified = signed_headers(&request).and_then(|headers| {
        verify(&signing_key, &headers, &body, Utc::now().timestamp())?;
        Ok(headers.id.to_owned())
    });
    let webhook_id = match verified {
        Ok(webhook_id) => webhook_id,
        Err(problem) => {
            simulation.reject().await;
            return responses::unverified(&problem);
        }
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        simulation.reject().await;
        return responses::not_json();
    }
    let received_at = Utc::now();
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                body: Some(String::from_utf8_lossy(&body).into_owned()),
                ..DeliveryRecord::new(
                    Provider::Webhook,
                    Some(webhook_id),
                    endpoint.clone(),
                    received_at,
                )
            }]
        })
        .await;
    match admission {
        Admission::Fault { kind, retry_after } => responses::fault(kind, &retry_after),
        Admission::Accepted | Admission::Replayed { .. } => responses::received(),
    }
}
