//! Every answer the simulated Slack gives. Slack's incoming webhooks answer in plain text: `ok`,
//! or an error code such as `no_text`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::payload::PayloadProblem;
use crate::behaviour::FaultKind;
use crate::retry_after;

fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

pub fn ok() -> HttpResponse {
    plain(StatusCode::OK, "ok")
}

pub fn payload_problem(problem: PayloadProblem) -> HttpResponse {
    plain(StatusCode::BAD_REQUEST, problem.code())
}

pub fn no_service() -> HttpResponse {
    plain(StatusCode::NOT_FOUND, "no_service")
}

pub fn action_prohibited() -> HttpResponse {
    plain(StatusCode::FORBIDDEN, "action_prohibited")
}

pub fn channel_is_archived() -> HttpResponse {
    plain(StatusCode::GONE, "channel_is_archived")
}

/// The body could not be read: too large (413) or broken in transit (400).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return plain(status, "request_too_large");
    }
    plain(StatusCode::BAD_REQUEST, "invalid_payload")
}

pub async fn method_not_allowed() -> HttpResponse {
    plain(StatusCode::METHOD_NOT_ALLOWED, "invalid_method")
}

/// The answer to a simulated fault. `rollup_error` is Slack's code for a failure on its side.
pub fn fault(kind: FaultKind, retry_after: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => plain(StatusCode::INTERNAL_SERVER_ERROR, "rollup_error"),
        FaultKind::RateLimit => {
            let mut response = plain(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            retry_after::insert_header(&mut response, retry_after);
            response
        }
        FaultKind::Timeout => plain(StatusCode::GATEWAY_TIMEOUT, "timeout"),
    }
}
