//! The header Herald puts its delivery id in when the provider's own API has no place for it
//! (Slack, Discord, Telegram and Pushover; SMTP reads it from the message's headers): the
//! simulator records it as the delivery's reference, so the exactly-once proofs work the same
//! for every provider.

use actix_web::HttpRequest;

pub const DELIVERY_ID_HEADER: &str = "X-Herald-Delivery-Id";

/// The trimmed header value; `None` when absent, empty or not visible ASCII.
pub fn delivery_id(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(DELIVERY_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|reference| !reference.is_empty())
        .map(str::to_owned)
}
