//! Traces: `tracing` spans exported as OpenTelemetry spans over OTLP, and the W3C trace context
//! that carries one notification's trace from the HTTP request through PostgreSQL and Kafka to the
//! provider call.
//!
//! Configured only by the standard OpenTelemetry variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; without either nothing is exported and spans cost no
//! OpenTelemetry work), `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or `http/protobuf`, the default),
//! `OTEL_SERVICE_NAME` (default: the binary's name), `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` for batching, `OTEL_SDK_DISABLED`.
//!
//! A trace context travels between processes as a W3C `traceparent` string: in HTTP headers, in
//! the notification's row (so the relay and the worker's retries stay in the request's trace), and
//! in Kafka record headers or the record's envelope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The W3C header (and Kafka record header) that carries a span context.
pub const TRACEPARENT: &str = "traceparent";

/// Set once `init` has installed an exporter: spans made only for export (one per Kafka record,
/// one per notification published) are skipped when nothing would receive them.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans. Code that makes spans only for traces asks this first.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The process's tracing set-up; `shutdown` exports the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (bounded by the exporter's own timeout). Call it last.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK's shutdown blocks until its export thread is done: not on an async thread.
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(error) = provider.shutdown() {
                eprintln!("exporting the last spans failed: {error}");
            }
        })
        .await;
    }
}

fn configured(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|value| !value.trim().is_empty())
}

/// Whether the environment asks for trace export.
pub fn trace_export_configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim() == "true");
    !disabled
        && (configured("OTEL_EXPORTER_OTLP_ENDPOINT")
            || configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Logging to stdout (JSON lines when `HERALD_LOG_FORMAT=json`; level from `RUST_LOG`, default
/// `info`) and, when an OTLP endpoint is configured, span export as `default_service_name` (unless
/// `OTEL_SERVICE_NAME` names it). Call once, inside the Tokio runtime (the gRPC exporter needs it).
pub fn init(default_service_name: &'static str) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = if trace_export_configured() {
        match build_provider(default_service_name) {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!("trace export disabled: {error}");
                None
            }
        }
    } else {
        None
    };
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(default_service_name))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(trace_filter())
    });
    // Each layer has its own filter: `RUST_LOG=warn` quiets the logs, never the traces.
    // A second initialisation (several apps in one test binary) is harmless.
    let _ = tracing_subscriber::registry()
        .with(log_layer().with_filter(log_filter()))
        .with(otel_layer)
        .try_init();
    Telemetry { provider }
}

/// Logging only, no span export: for tests and tools.
pub fn init_logging() {
    let _ = tracing_subscriber::registry()
        .with(log_layer().with_filter(log_filter()))
        .try_init();
}

/// What becomes a span (or a span event): Herald's spans and events at `info` and above. The
/// clients the exporter itself uses (hyper, h2, tonic, reqwest) are left out, or every export
/// would be traced and exported in turn.
fn trace_filter() -> EnvFilter {
    EnvFilter::new(
        "info,sqlx=warn,sea_orm=warn,rdkafka=warn,h2=off,hyper=off,hyper_util=off,tonic=off,\
         tower=off,reqwest=off,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off",
    )
}

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn,sea_orm=warn"))
}

/// Log lines on stdout: JSON when `HERALD_LOG_FORMAT=json`, human-readable otherwise.
fn log_layer<S>() -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let json = std::env::var("HERALD_LOG_FORMAT").is_ok_and(|format| format == "json");
    if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_target(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(true).boxed()
    }
}

fn build_provider(
    default_service_name: &'static str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    // Protocol, endpoint, headers, timeout and compression come from the OTEL_EXPORTER_OTLP_*
    // variables; the sampler and batching from OTEL_TRACES_SAMPLER* and OTEL_BSP_*.
    let exporter = opentelemetry_otlp::SpanExporter::builder().build()?;
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default_service_name.to_owned());
    let resource = Resource::builder()
        .with_service_name(service_name)
        .with_attribute(opentelemetry::KeyValue::new(
            opentelemetry_semantic_conventions::resource::SERVICE_VERSION,
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The W3C `traceparent` of a span, if it belongs to a trace (spans exist but have no trace when
/// nothing is exported).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    traceparent_of_context(&span.context())
}

/// The W3C `traceparent` of the current span, if this process exports spans.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    traceparent_of(&tracing::Span::current())
}

fn traceparent_of_context(context: &Context) -> Option<String> {
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The remote span context a `traceparent` names (an empty context when it is malformed: a bad
/// value from outside starts a new trace rather than failing anything).
pub fn context_from_traceparent(traceparent: &str) -> Context {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// Makes `traceparent`'s span the parent of `span`; call before anything reads `span`'s context.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let _ = span.set_parent(context_from_traceparent(traceparent));
    }
}

/// Links `span` to `traceparent`'s span (a batch to the requests or records in it).
pub fn add_link(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let context = context_from_traceparent(traceparent);
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// Marks `span` as failed, with the reason (OpenTelemetry status `Error`).
pub fn set_error(span: &tracing::Span, description: impl Into<String>) {
    span.set_status(opentelemetry::trace::Status::error(description.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_survives_the_round_trip_and_a_malformed_one_is_no_context() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = context_from_traceparent(traceparent);
        assert!(context.span().span_context().is_remote());
        assert_eq!(
            traceparent_of_context(&context).as_deref(),
            Some(traceparent)
        );
        for malformed in ["", "00-zz-00f067aa0ba902b7-01", "garbage\0"] {
            let context = context_from_traceparent(malformed);
            assert!(!context.span().span_context().is_valid(), "{malformed:?}");
            assert_eq!(traceparent_of_context(&context), None);
        }
    }

    #[test]
    fn spans_have_no_traceparent_when_nothing_is_exported() {
        let span = tracing::info_span!("untraced");
        assert_eq!(traceparent_of(&span), None);
    }
}
