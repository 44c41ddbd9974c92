//! SendGrid's error shape, `{"errors": [{"message", "field", "help"}]}`, and every non-success
//! answer the simulated SendGrid gives.

use actix_web::http::header::RETRY_AFTER;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::behaviour::FaultKind;

/// One problem with a request. `field` is a dotted path into the JSON body, such as
/// `personalizations.0.to.0.email`, or `None` when the problem is not about one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub message: String,
    pub field: Option<String>,
    /// Always `null`: SendGrid links to its documentation here; the simulator has none.
    pub help: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            message: message.into(),
            field: Some(field.into()),
            help: None,
        }
    }

    pub fn general(message: impl Into<String>) -> Self {
        FieldError {
            message: message.into(),
            field: None,
            help: None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: &'a [FieldError],
}

fn error_response(status: StatusCode, errors: &[FieldError]) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { errors })
}

pub fn bad_request(errors: &[FieldError]) -> HttpResponse {
    error_response(StatusCode::BAD_REQUEST, errors)
}

pub fn unauthorized() -> HttpResponse {
    error_response(
        StatusCode::UNAUTHORIZED,
        &[FieldError::general(
            "The provided authorization grant is invalid, expired, or revoked",
        )],
    )
}

pub fn malformed_json(error: &serde_json::Error) -> HttpResponse {
    bad_request(&[FieldError::general(format!(
        "Bad Request: the request body is not valid JSON ({error})"
    ))])
}

pub fn wrong_content_type() -> HttpResponse {
    bad_request(&[FieldError::general(
        "Content-Type should be application/json.",
    )])
}

/// The body could not be read: too large (413, SendGrid's 30 MB limit) or broken in transit.
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error_response(
            status,
            &[FieldError::general(
                "The JSON payload you have included in your request is too large. Please limit \
                 your request to 30 MB.",
            )],
        );
    }
    bad_request(&[FieldError::general(format!(
        "Bad Request: the request body could not be read ({error})"
    ))])
}

pub async fn method_not_allowed() -> HttpResponse {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &[FieldError::general("Method Not Allowed")],
    )
}

/// The answer to a simulated fault.
pub fn fault(kind: FaultKind, retry_after: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[FieldError::general("Internal server error")],
        ),
        FaultKind::RateLimit => HttpResponse::TooManyRequests()
            .insert_header((RETRY_AFTER, retry_after))
            .json(ErrorBody {
                errors: &[FieldError::general("too many requests")],
            }),
        FaultKind::Timeout => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            &[FieldError::general("Gateway Timeout")],
        ),
    }
}
