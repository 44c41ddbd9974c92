//! Per-request timing: the `X-Response-Time` header, the latency metrics, and slow-request logs
//! (warn above 100 ms, error above 1 s).

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

use crate::metrics;

const SLOW_WARN: Duration = Duration::from_millis(100);
const SLOW_ERROR: Duration = Duration::from_secs(1);
static RESPONSE_TIME: HeaderName = HeaderName::from_static("x-response-time");

pub async fn time_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    // A fixed set: a client can send any method name, and labels must stay bounded.
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let mut response = next.call(request).await?;
    let elapsed = started.elapsed();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status();
    let labels = [method, route.as_str(), metrics::status_class(status)];
    metrics::HTTP_REQUEST_SECONDS
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    metrics::HTTP_REQUESTS.with_label_values(&labels).inc();
    if elapsed > SLOW_ERROR {
        tracing::error!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "very slow request");
    } else if elapsed > SLOW_WARN {
        tracing::warn!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "slow request");
    }
    let header_value = format!("{:.3}ms", elapsed.as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&header_value) {
        response.headers_mut().insert(RESPONSE_TIME.clone(), value);
    }
    Ok(response)
}
