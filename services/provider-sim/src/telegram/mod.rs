//! The simulated Telegram Bot API: `POST /telegram/bot{token}/sendMessage`, the path of
//! `https://api.telegram.org/bot{token}/sendMessage` under `/telegram`.
//!
//! Order of checks, as on the real API: the bot token (401), the method (404), then the
//! parameters and the chat (400, 403), then the simulated behaviour (latency, 500, 429, 504) for
//! valid requests only. Every answer is `{"ok": …}` JSON: `result` on success, `error_code`
//! and `description` otherwise. Method names are case-insensitive, as Telegram's are.

mod chat;
pub mod message_numbers;
mod parameters;
pub mod responses;
mod send_message;
mod telegram_error;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use secrecy::ExposeSecret;

pub use message_numbers::MessageNumbers;
use parameters::read_parameters;
use send_message::validate_send_message;
use telegram_error::TelegramError;

use crate::delivery_reference::delivery_id;
use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

pub const BOT_METHOD_PATH: &str = "/telegram/bot{token}/{method}";
const SEND_MESSAGE: &str = "sendMessage";
/// A message is at most 4,096 characters: 1 MiB is ample.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(BOT_METHOD_PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(call_method))
            .default_service(web::to(responses::method_not_allowed)),
    );
}

async fn call_method(
    state: web::Data<SimulatorState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let simulation = state.simulation(Provider::Telegram);
    let (token, method) = path.into_inner();
    if token != state.telegram_bot_token.expose_secret() {
        simulation.reject().await;
        return TelegramError::unauthorized().response();
    }
    if !method.eq_ignore_ascii_case(SEND_MESSAGE) {
        simulation.reject().await;
        return TelegramError::not_found().response();
    }
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            simulation.reject().await;
            return responses::unreadable_body(&error);
        }
    };
    let message = match read_parameters(&request, &body).and_then(|p| validate_send_message(&p)) {
        Ok(message) => message,
        Err(error) => {
            simulation.reject().await;
            return error.response();
        }
    };
    let message_number = state.telegram_message_numbers.next();
    let sent_at = Utc::now();
    let reference = delivery_id(&request);
    let admission = simulation
        .admit(|| {
            vec![DeliveryRecord {
                body: Some(message.text.clone()),
                provider_message_id: Some(message_number.to_string()),
                ..DeliveryRecord::new(
                    Provider::Telegram,
                    reference,
                    message.chat.recipient(),
                    sent_at,
                )
            }]
        })
        .await;
    let message_number = match admission {
        Admission::Fault { kind, retry_after } => return responses::fault(kind, &retry_after),
        Admission::Accepted => message_number,
        Admission::Replayed {
            original_message_id,
        } => original_message_id
            .and_then(|original| original.parse().ok())
            .unwrap_or(message_number),
    };
    let bot_id = bot_id(state.telegram_bot_token.expose_secret());
    HttpResponse::Ok().json(responses::sent_message(
        message_number,
        bot_id,
        &message,
        sent_at,
    ))
}

/// The numeric part of a `<bot id>:<secret>` token (checked at start-up), the bot's user id.
fn bot_id(token: &str) -> i64 {
    token
        .split_once(':')
        .and_then(|(id, _)| id.parse().ok())
        .unwrap_or_default()
}
