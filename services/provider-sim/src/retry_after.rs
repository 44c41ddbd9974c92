//! The configured `retry_after` of a behaviour, as each provider writes it. The knob is kept
//! verbatim (seconds, an HTTP-date, or garbage from a misbehaving provider), so every rendering
//! here passes a non-number through unchanged rather than "fixing" it: clients must cope.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::HttpResponse;
use serde_json::Value;

/// The value as a number of seconds, when it is a finite non-negative number.
pub fn seconds(retry_after: &str) -> Option<f64> {
    let seconds: f64 = retry_after.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// For JSON bodies that carry fractional seconds (Discord's `retry_after: 1.5`).
pub fn fractional_seconds_json(retry_after: &str) -> Value {
    match seconds(retry_after).and_then(serde_json::Number::from_f64) {
        Some(number) => Value::Number(number),
        None => Value::String(retry_after.to_owned()),
    }
}

/// For JSON bodies that carry whole seconds (Telegram's `parameters.retry_after`): a fraction
/// is rounded up, so a client never retries early.
pub fn whole_seconds_json(retry_after: &str) -> Value {
    match seconds(retry_after) {
        Some(seconds) => Value::from(seconds.ceil() as u64),
        None => Value::String(retry_after.to_owned()),
    }
}

/// Adds `Retry-After`, unless the configured text cannot be a header value at all (a control
/// character): such a provider would have sent no usable header either.
pub fn insert_header(response: &mut HttpResponse, retry_after: &str) {
    if let Ok(value) = HeaderValue::from_str(retry_after) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_become_json_numbers_and_anything_else_stays_text() {
        assert_eq!(fractional_seconds_json("1.5"), json!(1.5));
        assert_eq!(fractional_seconds_json("2"), json!(2.0));
        assert_eq!(whole_seconds_json("5"), json!(5));
        assert_eq!(whole_seconds_json("1.2"), json!(2));
        for odd in ["Wed, 21 Oct 2015 07:28:00 GMT", "soon", "-1", "NaN", "inf"] {
            assert_eq!(fractional_seconds_json(odd), json!(odd));
            assert_eq!(whole_seconds_json(odd), json!(odd));
        }
    }

    #[test]
    fn an_impossible_header_value_is_left_out() {
        let mut response = HttpResponse::TooManyRequests().finish();
        insert_header(&mut response, "1\n2");
        assert!(response.headers().get(RETRY_AFTER).is_none());
        insert_header(&mut response, "3");
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "3");
    }
}
