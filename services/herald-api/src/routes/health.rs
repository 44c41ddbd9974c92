use std::time::Duration;

use actix_web::{web, HttpResponse};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers, and nothing of it is broken for good (a Kafka producer that hit
/// a fatal error never produces again: a restart makes a new one, and the outbox keeps what waits).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "alive"),
    (status = 503, description = "broken for good (the body's status says why): restart the process"),
))]
pub async fn healthz() -> HttpResponse {
    herald_telemetry::health::endpoint().await
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub postgres: bool,
    pub redis: bool,
    pub kafka: bool,
}

/// Readiness: PostgreSQL answers, which is all a 2xx needs (the outbox keeps what the broker cannot
/// take yet, and Redis is a cache). The broker and Redis are reported, not required: failing
/// readiness on them would take every replica out of its Service at once, exactly when the outbox
/// is meant to carry the load.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Readiness, description = "PostgreSQL reachable; `kafka` and `redis` say whether they are"),
    (status = 503, body = Readiness, description = "PostgreSQL unreachable"),
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = async {
        tokio::time::timeout(
            READINESS_TIMEOUT,
            state.database.connection().execute_unprepared("SELECT 1"),
        )
        .await
        .is_ok_and(|result| result.is_ok())
    };
    let redis = state.redis.ping();
    let broker = herald_kafka::broker_reachable(&state.producer, &state.topic, READINESS_TIMEOUT);
    let (postgres, redis, kafka) = tokio::join!(postgres, redis, broker);
    let readiness = Readiness {
        ready: postgres,
        postgres,
        redis,
        kafka,
    };
    if readiness.ready {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}
