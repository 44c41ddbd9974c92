//! What handlers share.

use std::time::Duration;

use herald_domain::ValidationLimits;
use herald_store::DatabaseConnection;
use rdkafka::producer::FutureProducer;

use crate::ingest::IngestHandle;

pub struct AppState {
    pub database: DatabaseConnection,
    pub redis: redis::aio::ConnectionManager,
    pub redis_timeout: Duration,
    pub producer: FutureProducer,
    pub topic: String,
    pub ingest: IngestHandle,
    pub limits: RequestLimits,
}

#[derive(Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
    pub validation: ValidationLimits,
}
