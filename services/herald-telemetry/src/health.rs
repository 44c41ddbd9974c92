//! Liveness, once for every Herald process: `GET /healthz` answers 200 while the process can do
//! its work, and 503 naming why once a part of it never can again (a Kafka producer that hit a
//! fatal error, say), so that the orchestrator restarts it. Readiness is each process's own.

use std::sync::Mutex;

use actix_web::HttpResponse;

/// Why this process can no longer do its work, once something said so; never cleared (only a
/// restart helps).
static BROKEN: Mutex<Option<&'static str>> = Mutex::new(None);

/// Marks this process as broken for good, for `reason` (a snake_case word: the `/healthz` body).
pub fn mark_broken(reason: &'static str) {
    let mut broken = BROKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    broken.get_or_insert(reason);
}

/// Why this process is broken for good, if it is.
pub fn broken() -> Option<&'static str> {
    *BROKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `GET /healthz` of every Herald process.
pub async fn endpoint() -> HttpResponse {
    match broken() {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Some(reason) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": reason}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_marked_broken_fails_its_liveness_for_the_first_reason() {
        assert_eq!(endpoint().await.status(), 200);
        mark_broken("kafka_producer_failed");
        mark_broken("something_else");
        let response = endpoint().await;
        assert_eq!(response.status(), 503);
        assert_eq!(broken(), Some("kafka_producer_failed"));
    }
}
