//! A refusal of the simulated Bot API, in Telegram's shape: `{"ok": false, "error_code",
//! "description"}`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// A refusal: the HTTP status (also the body's `error_code`) and Telegram's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramError {
    pub status: StatusCode,
    pub description: String,
}

impl TelegramError {
    pub(super) fn new(status: StatusCode, description: impl Into<String>) -> Self {
        TelegramError {
            status,
            description: description.into(),
        }
    }

    pub fn bad_request(description: &str) -> Self {
        TelegramError::new(StatusCode::BAD_REQUEST, description)
    }

    pub fn forbidden(description: &str) -> Self {
        TelegramError::new(StatusCode::FORBIDDEN, description)
    }

    pub fn unauthorized() -> Self {
        TelegramError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// An unknown method.
    pub fn not_found() -> Self {
        TelegramError::new(StatusCode::NOT_FOUND, "Not Found")
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({
            "ok": false,
            "error_code": self.status.as_u16(),
            "description": self.description
        }))
    }
}
