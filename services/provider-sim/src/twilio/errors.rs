//! Twilio's error shape, `{"code", "message", "more_info", "status"}`, and every non-success
//! answer the simulated Twilio gives.

use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::behaviour::FaultKind;

/// A Twilio error: its numeric code (see twilio.com/docs/errors) and the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u32,
    message: &'a str,
    more_info: String,
    status: u16,
}

impl TwilioError {
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        TwilioError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            code: self.code,
            message: &self.message,
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        })
    }
}

pub fn unauthorized() -> HttpResponse {
    let mut response = TwilioError {
        status: StatusCode::UNAUTHORIZED,
        code: 20003,
        message: "Authenticate".to_owned(),
    }
    .response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
    );
    response
}

/// The body could not be read (too large or broken in transit).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    TwilioError {
        status: error.as_response_error().status_code(),
        code: 20001,
        message: format!("The request body could not be read: {error}"),
    }
    .response()
}

pub async fn method_not_allowed() -> HttpResponse {
    TwilioError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: 20004,
        message: "Method not allowed".to_owned(),
    }
    .response()
}

/// The answer to a simulated fault.
pub fn fault(kind: FaultKind, retry_after: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => TwilioError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: 20500,
            message: "Internal Server Error".to_owned(),
        }
        .response(),
        FaultKind::RateLimit => {
            let mut response = TwilioError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: 20429,
                message: "Too Many Requests".to_owned(),
            }
            .response();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(retry_after) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
        FaultKind::Timeout => TwilioError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: 20504,
            message: "Gateway Timeout".to_owned(),
        }
        .response(),
    }
}
