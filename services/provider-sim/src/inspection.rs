//! The inspection API tests and benchmarks use to prove what the providers received:
//! counters, accepted sends per delivery reference, the newest messages in full, and a reset.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::json_error::json_error;
use crate::provider::{PerProvider, Provider};
use crate::records::{DeliveryRecord, ProviderStats};
use crate::state::SimulatorState;

const DEFAULT_RECEIVED_LIMIT: usize = 100;
const MAX_RECEIVED_LIMIT: usize = 200_000;

/// `/_sim/stats`: `{"sendgrid": {…}, "twilio": {…}, …}`, every provider.
pub type StatsSnapshot = PerProvider<ProviderStats>;

#[derive(Serialize, Deserialize)]
pub struct ReferenceCounts {
    /// Accepted sends per reference; sends without a reference are not listed.
    pub counts: HashMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
pub struct ReceivedMessages {
    /// Oldest first, newest last.
    pub messages: Vec<DeliveryRecord>,
}

#[derive(Deserialize)]
struct ProviderQuery {
    provider: Provider,
}

#[derive(Deserialize)]
struct ReceivedQuery {
    provider: Provider,
    reference: Option<String>,
    limit: Option<usize>,
}

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/_sim/health", web::get().to(health))
        .route("/_sim/stats", web::get().to(stats))
        .route("/_sim/references", web::get().to(references))
        .route("/_sim/received", web::get().to(received))
        .route("/_sim/reset", web::post().to(reset));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn stats(state: web::Data<SimulatorState>) -> HttpResponse {
    let stats: StatsSnapshot = PerProvider::from_fn(|provider| state.simulation(provider).stats());
    HttpResponse::Ok().json(stats)
}

async fn references(
    state: web::Data<SimulatorState>,
    query: web::Query<ProviderQuery>,
) -> HttpResponse {
    let counts = state.simulation(query.provider).reference_counts();
    HttpResponse::Ok().json(ReferenceCounts { counts })
}

async fn received(
    state: web::Data<SimulatorState>,
    query: web::Query<ReceivedQuery>,
) -> HttpResponse {
    let limit = query.limit.unwrap_or(DEFAULT_RECEIVED_LIMIT);
    if !(1..=MAX_RECEIVED_LIMIT).contains(&limit) {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("limit must be between 1 and {MAX_RECEIVED_LIMIT}"),
        );
    }
    let messages = state
        .simulation(query.provider)
        .recent(query.reference.as_deref(), limit);
    HttpResponse::Ok().json(ReceivedMessages { messages })
}

/// Forgets what every provider received and any queued one-shot faults; rates, latency and the
/// registered webhook endpoints stay (they are configuration, like the credentials).
async fn reset(state: web::Data<SimulatorState>) -> HttpResponse {
    state.reset();
    tracing::info!("simulator records reset");
    HttpResponse::Ok().json(serde_json::json!({"reset": true}))
}
