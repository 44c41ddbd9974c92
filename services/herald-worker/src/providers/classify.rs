use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

use super::SendOutcome;

/// Retryable for 429 and 5xx (honouring `Retry-After` seconds), permanent for other statuses.
pub(crate) async fn classify_error_response(provider: &str, response: Response) -> SendOutcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Error bodies are small JSON documents; cap what we keep in `last_error`.
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    let error = format!("{provider} answered {status}: {body}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        SendOutcome::Retryable {
            error,
            http_status: Some(status.as_u16()),
            retry_after,
        }
    } else {
        SendOutcome::Permanent {
            error,
            http_status: Some(status.as_u16()),
        }
    }
}

/// A request that got no HTTP answer (timeout, refused, reset) may be retried.
pub fn classify_transport_error(provider: &str, error: reqwest::Error) -> SendOutcome {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    SendOutcome::Retryable {
        error: format!("{provider} request {kind}: {error}"),
        http_status: None,
        retry_after: None,
    }
}
