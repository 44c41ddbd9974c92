//! Turning a provider's answer into a [`SendOutcome`], defensively: a provider's error body is read
//! only up to a small cap, and its `Retry-After` (seconds or HTTP-date) is capped, so neither a huge
//! body nor a huge delay can hurt the worker.

use std::time::{Duration, SystemTime};

use herald_domain::ProviderId;
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

use crate::provider::SendOutcome;

/// What we keep of an error body: enough for a human to see what the provider said.
const MAX_ERROR_BODY_BYTES: usize = 4096;
/// The longest `Retry-After` taken from a provider; the retry policy caps it further.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Parses `Retry-After` in either HTTP form (RFC 9110 §10.2.3): delay-seconds or an HTTP-date,
/// relative to `now`. A date in the past means "now"; anything unparsable is ignored; the result is
/// at most [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if value.bytes().all(|byte| byte.is_ascii_digit()) && !value.is_empty() {
        // Any number of digits: a value too large for u64 is simply the cap.
        Duration::from_secs(
            value
                .parse::<u64>()
                .unwrap_or(u64::MAX)
                .min(MAX_RETRY_AFTER.as_secs()),
        )
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Reads at most `max_bytes` of a response body; the rest is never read.
pub(crate) async fn read_capped(mut response: Response, max_bytes: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max_bytes {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max_bytes - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// At most [`MAX_ERROR_BODY_BYTES`] of the body, as text for `last_error`.
async fn capped_body(response: Response) -> String {
    body_excerpt(&read_capped(response, MAX_ERROR_BODY_BYTES).await)
}

/// The first 500 characters of an answer's body, as text for `last_error`.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(500).collect()
}

/// Whether an HTTP status is worth a retry: the provider's server or a proxy in front of it gave up
/// reading the request in time (408: nothing was processed, RFC 9110 §15.5.9 lets the client
/// repeat it), a rate limit (429), or the provider's own failure (5xx). A 408 was once permanent:
/// a provider slow to read a request, under load, failed deliveries for good.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Retryable for 408, 429 and 5xx (honouring `Retry-After`), permanent for other statuses.
pub(crate) async fn classify_error_response(
    provider: ProviderId,
    response: Response,
) -> SendOutcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let body = capped_body(response).await;
    let error = format!("{provider} answered {status}: {body}");
    if is_retryable_status(status) {
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
pub fn classify_transport_error(provider: ProviderId, error: reqwest::Error) -> SendOutcome {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_is_parsed_and_capped() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999999999999", now),
            Some(MAX_RETRY_AFTER),
            "more digits than u64 holds must not panic or be ignored"
        );
    }

    #[test]
    fn retry_after_as_an_http_date_is_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 20:00:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 20:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 19:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn a_request_timeout_a_rate_limit_and_server_errors_are_retried_and_nothing_else() {
        let retried: Vec<u16> = (100..600)
            .filter(|code| is_retryable_status(StatusCode::from_u16(*code).unwrap()))
            .collect();
        let mut expected = vec![408, 429];
        expected.extend(500..600);
        assert_eq!(retried, expected);
    }

    #[test]
    fn garbage_retry_after_is_ignored() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
    }
}

#[cfg(test)]
mod body_tests {
    use std::time::{Duration, Instant};

    use actix_web::{web, App, HttpResponse, HttpServer};
    use futures::stream;

    use super::*;

    /// A provider answering 500 with an endless body: the worker reads 4 KiB of it and moves on.
    #[tokio::test]
    async fn an_endless_error_body_is_cut_off_and_classified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = HttpServer::new(|| {
            App::new().default_service(web::to(|| async {
                let chunk = web::Bytes::from(vec![b'x'; 64 * 1024]);
                let endless = stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                HttpResponse::InternalServerError().streaming(endless)
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);

        let started = Instant::now();
        let response = reqwest::Client::new()
            .get(format!("http://{address}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        let outcome = classify_error_response(ProviderId::Webhook, response).await;
        let SendOutcome::Retryable {
            error, http_status, ..
        } = outcome
        else {
            panic!("a 500 is retryable: {outcome:?}");
        };
        assert_eq!(http_status, Some(500));
        assert!(error.len() < 700, "{} bytes kept", error.len());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "did not read the endless body"
        );
        handle.stop(false).await;
    }
}
