//! Every answer the simulated webhook endpoint gives. A receiver's answers are its own; the
//! simulator's JSON shape, `{"error": …}`, says why a request was refused, which is what a test
//! of the sender wants to see.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use super::signature::SignatureProblem;
use crate::behaviour::FaultKind;
use crate::json_error::json_error;
use crate::retry_after;

pub fn received() -> HttpResponse {
    HttpResponse::Ok().json(json!({"received": true}))
}

pub fn unknown_endpoint(endpoint: &str) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        &format!(
            "no webhook endpoint `{endpoint}` is registered (PUT /_sim/webhook-endpoints/{endpoint})"
        ),
    )
}

pub fn unverified(problem: &SignatureProblem) -> HttpResponse {
    json_error(StatusCode::UNAUTHORIZED, &problem.to_string())
}

pub fn not_json() -> HttpResponse {
    json_error(StatusCode::BAD_REQUEST, "the body is not JSON")
}

/// The body could not be read: too large (413) or broken in transit (400).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return json_error(status, "the body is larger than 1 MiB");
    }
    json_error(
        StatusCode::BAD_REQUEST,
        &format!("the body could not be read: {error}"),
    )
}

pub async fn method_not_allowed() -> HttpResponse {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "webhooks are POSTed")
}

/// The answer to a simulated fault.
pub fn fault(kind: FaultKind, retry_after: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => {
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "simulated server error")
        }
        FaultKind::RateLimit => {
            let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            retry_after::insert_header(&mut response, retry_after);
            response
        }
        FaultKind::Timeout => json_error(StatusCode::GATEWAY_TIMEOUT, "simulated timeout"),
    }
}
