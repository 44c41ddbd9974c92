//! The simulated Slack incoming webhooks: `POST /slack/services/{T…}/{B…}/{secret}`, the path of
//! `https://hooks.slack.com/services/T…/B…/…`.
//!
//! Order of checks, as on the real service: the webhook itself (404 `no_service` for a revoked
//! one), then the payload (400), then the channel (403, 410), then the simulated behaviour
//! (latency, 500, 429, 504) for valid requests only; success is 200 with the body `ok`. Slack's
//! answers are plain-text error codes, not JSON. The credential is the URL: the simulator
//! records the `T…/B…` part as the recipient and never the secret.

mod broken_webhooks;
mod payload;
pub mod responses;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use broken_webhooks::BrokenWebhook;
use payload::validate_message;

use crate::delivery_reference::delivery_id;
use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const WEBHOOK_PATH: &str = "/slack/services/{team}/{service}/{secret}";
/// Slack keeps 40,000 characters of `text` and 50 blocks of a few thousand each: 1 MiB is
/// ample for any message it would take.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(WEBHOOK_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(post_message))
            .default_service(web::to(responses::method_not_allowed)),
    );
}

async fn post_message(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Slack);
    let (team, service, secret) = path.into_inner();
    let broken = BrokenWebhook::from_secret(&secret);
    if broken == Some(BrokenWebhook::NoService) {
        simulation.reject().await;
        return responses::no_service();
    }
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return responses::unreadable_body(&error);
        }
    };
    let message = match validate_message(&body) {
        Ok(message) => message,
        Err(problem) => {
            simulation.reject().await;
            return responses::payload_problem(problem);
        }
    };
    if let Some(broken) = broken {
        simulation.reject().await;
        return broken.response();
    }
    let reference = delivery_id(&request);
    let received_at = Utc::now();
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                body: Some(message.recorded_body()),
                ..DeliveryRecord::new(
                    Provider::Slack,
                    reference,
                    format!("{team}/{service}"),
                    received_at,
                )
            }]
        })
        .await;
    match admission {
        Admission::Fault { kind, retry_after } => responses::fault(kind, &retry_after),
        Admission::Accepted | Admission::Replayed { .. } => responses::ok(),
    }
}
