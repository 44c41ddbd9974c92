//! Discord's error shape, `{"message", "code"}` (plus `errors` for a form problem), and every
//! non-success answer the simulated Discord gives, including its rate-limit headers.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::Utc;
use serde_json::{json, Value};

use super::snowflake;
use crate::behaviour::FaultKind;
use crate::retry_after;

/// A refusal: its HTTP status and Discord's JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscordError {
    pub status: StatusCode,
    pub body: Value,
}

impl DiscordError {
    fn new(status: StatusCode, message: &str, code: u32) -> Self {
        DiscordError {
            status,
            body: json!({"message": message, "code": code}),
        }
    }

    /// A deleted webhook, a wrong token or an id that is no snowflake.
    pub fn unknown_webhook() -> Self {
        DiscordError::new(StatusCode::NOT_FOUND, "Unknown Webhook", 10015)
    }

    pub fn invalid_json() -> Self {
        DiscordError::new(
            StatusCode::BAD_REQUEST,
            "The request body contains invalid JSON.",
            50109,
        )
    }

    pub fn empty_message() -> Self {
        DiscordError::new(
            StatusCode::BAD_REQUEST,
            "Cannot send an empty message",
            50006,
        )
    }

    /// `errors` is Discord's tree of field problems, `{"content": {"_errors": [...]}}`.
    pub fn invalid_form_body(errors: Value) -> Self {
        DiscordError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Invalid Form Body", "code": 50035, "errors": errors}),
        }
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

/// The body could not be read: too large (413) or broken in transit (400).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return DiscordError::new(status, "Request entity too large", 40005).response();
    }
    DiscordError::invalid_json().response()
}

pub async fn method_not_allowed() -> HttpResponse {
    DiscordError::new(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed", 0).response()
}

/// The answer to a simulated fault; `webhook_id` names the rate-limit bucket.
pub fn fault(kind: FaultKind, retry_after: &str, webhook_id: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => DiscordError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500: Internal Server Error",
            0,
        )
        .response(),
        FaultKind::RateLimit => rate_limited(retry_after, webhook_id),
        FaultKind::Timeout => {
            DiscordError::new(StatusCode::GATEWAY_TIMEOUT, "504: Gateway Timeout", 0).response()
        }
    }
}

/// 429 with `retry_after` (seconds, fractional) in the body, `Retry-After` and the
/// `X-RateLimit-*` headers, as Discord answers an exhausted bucket.
fn rate_limited(retry_after: &str, webhook_id: &str) -> HttpResponse {
    let mut response = HttpResponse::TooManyRequests().json(json!({
        "message": "You are being rate limited.",
        "retry_after": retry_after::fractional_seconds_json(retry_after),
        "global": false
    }));
    retry_after::insert_header(&mut response, retry_after);
    let mut headers = vec![
        ("x-ratelimit-limit", "5".to_owned()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-bucket", snowflake::stable(webhook_id)),
        ("x-ratelimit-scope", "user".to_owned()),
    ];
    // A configured delay that is no number (a misbehaving provider) has no reset time.
    if let Some(seconds) = retry_after::seconds(retry_after) {
        let reset_at = Utc::now().timestamp_millis() as f64 / 1000.0 + seconds;
        headers.push(("x-ratelimit-reset", format!("{reset_at:.3}")));
        headers.push(("x-ratelimit-reset-after", format!("{seconds:.3}")));
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}
