//! The Bot API's answer shape, `{"ok": true, "result": …}` or `{"ok": false, "error_code",
//! "description", "parameters"?}`, and every answer the simulated Telegram gives.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::send_message::SendMessage;
use super::telegram_error::TelegramError;
use crate::behaviour::FaultKind;
use crate::retry_after;

/// The bot the default token belongs to, as `from` shows it.
const BOT_FIRST_NAME: &str = "Herald";
const BOT_USERNAME: &str = "herald_local_bot";

/// 200 with the sent message.
pub fn sent_message(
    message_id: i64,
    bot_id: i64,
    message: &SendMessage,
    sent_at: DateTime<Utc>,
) -> Value {
    json!({
        "ok": true,
        "result": {
            "message_id": message_id,
            "from": {
                "id": bot_id,
                "is_bot": true,
                "first_name": BOT_FIRST_NAME,
                "username": BOT_USERNAME
            },
            "chat": message.chat.to_json(),
            "date": sent_at.timestamp(),
            "text": message.text
        }
    })
}

/// The body could not be read: too large (413) or broken in transit (400).
pub fn unreadable_body(error: &actix_web::Error) -> HttpResponse {
    let status = error.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return TelegramError::new(status, "Request Entity Too Large").response();
    }
    TelegramError::bad_request("Bad Request: the request body could not be read").response()
}

pub async fn method_not_allowed() -> HttpResponse {
    TelegramError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").response()
}

/// The answer to a simulated fault.
pub fn fault(kind: FaultKind, retry_after: &str) -> HttpResponse {
    match kind {
        FaultKind::ServerError => {
            TelegramError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                .response()
        }
        FaultKind::RateLimit => too_many_requests(retry_after),
        FaultKind::Timeout => {
            TelegramError::new(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout").response()
        }
    }
}

/// 429 with the delay in whole seconds in the description and `parameters.retry_after`, and
/// in `Retry-After`, which Telegram's Bot API server adds to every flood-limit answer.
fn too_many_requests(retry_after: &str) -> HttpResponse {
    let seconds = retry_after::whole_seconds_json(retry_after);
    let shown = match &seconds {
        Value::String(text) => text.clone(),
        number => number.to_string(),
    };
    let mut response = HttpResponse::TooManyRequests().json(json!({
        "ok": false,
        "error_code": 429,
        "description": format!("Too Many Requests: retry after {shown}"),
        "parameters": {"retry_after": seconds}
    }));
    retry_after::insert_header(&mut response, &shown);
    response
}
