//! The Message API's answer shape, `{"status": 1, "request": "<uuid>"}` or `{"<parameter>":
//! "<problem>", "errors": […], "status": 0, "request": "<uuid>"}`, and every answer the
//! simulated Pushover gives. Every answer carries a new `request` id.

use std::collections::BTreeMap;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use super::app_limit::{Allowance, LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER};
use super::keys::generate_request_id;
use crate::behaviour::FaultKind;
use crate::retry_after;

/// What the 429 says, for an application over its monthly limit and for a simulated rate limit.
pub const OVER_LIMIT: &str = "application is over its message limit";

/// A refusal: the HTTP status, the parameter at fault with what is wrong with it (both shown
/// as a member of the body, `"token": "invalid"`), and the sentence in `errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushoverError {
    pub status: StatusCode,
    pub parameter: Option<(&'static str, &'static str)>,
    pub error: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(flatten)]
    parameter: BTreeMap<&'static str, &'static str>,
    errors: [&'a str; 1],
    status: u8,
    request: String,
}

#[derive(Serialize)]
struct SuccessBody {
    status: u8,
    request: String,
    /// Only for emergency priority (2): what the Receipts API would be asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
}

impl PushoverError {
    fn new(
        status: StatusCode,
        parameter: Option<(&'static str, &'static str)>,
        error: String,
    ) -> Self {
        PushoverError {
            status,
            parameter,
            error,
        }
    }

    /// 400 about one parameter: `{"<name>": "<problem>", "errors": ["<error>"], …}`.
    pub fn parameter(name: &'static str, problem: &'static str, error: impl Into<String>) -> Self {
        PushoverError::new(StatusCode::BAD_REQUEST, Some((name, problem)), error.into())
    }

    pub fn invalid_token() -> Self {
        PushoverError::parameter("token", "invalid", "application token is invalid")
    }

    pub fn invalid_user() -> Self {
        PushoverError::parameter("user", "invalid", "user identifier is invalid")
    }

    pub fn blank_message() -> Self {
        PushoverError::parameter("message", "cannot be blank", "message cannot be blank")
    }

    /// `{"<name>": "is too long", "errors": ["<name> is more than <max> characters"]}`.
    pub fn too_long(name: &'static str, max_characters: usize) -> Self {
        PushoverError::parameter(
            name,
            "is too long",
            format!("{name} is more than {max_characters} characters"),
        )
    }

    /// `{"<name>": "is invalid", "errors": ["<name> is invalid"]}`.
    pub fn invalid(name: &'static str) -> Self {
        PushoverError::parameter(name, "is invalid", format!("{name} is invalid"))
    }

    /// `retry` or `expire` missing from an emergency-priority message.
    pub fn required_for_emergency(name: &'static str) -> Self {
        PushoverError::parameter(
            name,
            "must be supplied with priority=2",
            format!("{name} must be supplied with priority=2"),
        )
    }

    pub fn unparsable_json() -> Self {
        PushoverError::new(
            StatusCode::BAD_REQUEST,
            None,
            "request body is not a JSON object".to_owned(),
        )
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            parameter: self.parameter.into_iter().collect(),
            errors: [&self.error],
            status: 0,
            request: generate_request_id(),
        })
    }
}

/// A bare refusal, with no parameter at fault.
fn failure(status: StatusCode, error: &str) -> HttpResponse {
    PushoverError::new(status, None, error.to_owned()).response()
}

/// 200 `{"status": 1, "request": …}` (and the `receipt` of an emergency-priority message),
/// with the application's allowance in the `X-Limit-App-*` headers.
pub fn accepted(request_id: String, receipt: Option<String>, allowance: Allowance) -> HttpResponse {
    let mut response = HttpResponse::Ok().json(SuccessBody {
        status: 1,
        request: request_id,
        receipt,
    });
    insert_allowance(&mut response, allowance);
    response
}

/// 429: the application has sent its month's messages. No `Retry-After`: the allowance comes
/// back at `X-Limit-App-Reset`.
pub fn over_limit(allowance: Allowance) -> HttpResponse {
    let mut response = failure(StatusCode::TOO_MANY_REQUESTS, OVER_LIMIT);
    insert_allowance(&mut response, allowance);
    response
}

/// The answer to a simulated fault; a rate limit also says when to retry (`Retry-After`).
pub fn fault(kind: FaultKind, retry_after: &str, allowance: Allowance) -> HttpResponse {
    let mut response = match kind {
        FaultKind::ServerError => {
            failure(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
        FaultKind::RateLimit => {
            let mut response = failure(StatusCode::TOO_MANY_REQUESTS, OVER_LIMIT);
            retry_after::insert_header(&mut response, retry_after);
            response
        }
        FaultKind::Timeout => failure(StatusCode::GATEWAY_TIMEOUT, "gateway timeout"),
    };
    insert_allowance(&mut response, allowance);
    response
}

/// The body could not be read: too large (413) or broken in transit (400).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return failure(status, "request body is too large");
    }
    failure(StatusCode::BAD_REQUEST, "request body could not be read")
}

pub async fn method_not_allowed() -> HttpResponse {
    failure(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

fn insert_allowance(response: &mut HttpResponse, allowance: Allowance) {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static(LIMIT_HEADER),
        HeaderValue::from(allowance.limit),
    );
    headers.insert(
        HeaderName::from_static(REMAINING_HEADER),
        HeaderValue::from(allowance.remaining),
    );
    headers.insert(
        HeaderName::from_static(RESET_HEADER),
        HeaderValue::from(allowance.reset),
    );
}
