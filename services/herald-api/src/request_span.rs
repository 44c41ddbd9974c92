//! The server span of every request, named and attributed per the current OpenTelemetry HTTP
//! conventions (`http.request.method`, `http.route`, `url.path`, `http.response.status_code`, …):
//! tracing-actix-web's default builder still writes the deprecated names (`http.method`,
//! `http.status_code`, `http.target`). Continues an incoming W3C `traceparent`. No span when
//! nothing is exported.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use herald_telemetry::traces::{exporting, set_error, set_parent, TRACEPARENT};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if !exporting() {
            return Span::none();
        }
        let method = request.method().as_str();
        // The template, never the raw path: span names must have a bounded cardinality.
        let route = request.match_pattern();
        let connection = request.connection_info();
        let span = tracing::info_span!(
            "request",
            otel.name = %match &route {
                Some(route) => format!("{method} {route}"),
                None => method.to_owned(),
            },
            otel.kind = "server",
            http.request.method = method,
            http.route = route.as_deref(),
            url.path = request.path(),
            url.scheme = connection.scheme(),
            server.address = connection.host(),
            client.address = connection.realip_remote_addr(),
            network.protocol.version = http_version(request.version()),
            user_agent.original = request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|value| value.to_str().ok()),
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let incoming = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok());
        set_parent(&span, incoming);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if span.is_none() {
            return;
        }
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.response.status_code", status.as_u16());
        // A server span is an error only when the server failed: a 4xx is the client's.
        if status.is_server_error() {
            span.record("error.type", status.as_str());
            set_error(&span, status.to_string());
        }
    }
}

fn http_version(version: actix_web::http::Version) -> &'static str {
    match version {
        actix_web::http::Version::HTTP_09 => "0.9",
        actix_web::http::Version::HTTP_10 => "1.0",
        actix_web::http::Version::HTTP_2 => "2",
        actix_web::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
