//! The worker's spans (docs/DESIGN.md, "Traces"), per the OpenTelemetry messaging and HTTP
//! conventions: one `process` span per admitted batch, linked to its records; one `process` span per
//! record, child of the span that produced it (its context arrives in the record); one client span
//! per provider call, child of the record's span (or of the accepting request, for a delivery that
//! waited in the queue). None of them is made when nothing is exported.

use std::sync::Arc;

use herald_domain::{NotificationEnvelope, ProviderId};
use herald_kafka::trace_context::record_traceparent;
use herald_telemetry::traces::{add_link, exporting, set_error, set_parent, traceparent_of};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use herald_channels::SendOutcome;

/// The span of one admitted batch of a partition's records. Its links are added as its records
/// are decoded (`record_span`).
pub fn batch_span(records: &[OwnedMessage], consumer_group: &str) -> tracing::Span {
    if !exporting() {
        return tracing::Span::none();
    }
    let Some(first) = records.first() else {
        return tracing::Span::none();
    };
    tracing::info_span!(
        parent: None,
        "process_batch",
        otel.name = %format_args!("process {}", first.topic()),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = first.topic(),
        messaging.destination.partition.id = %first.partition(),
        messaging.consumer.group.name = consumer_group,
        messaging.batch.message_count = records.len(),
    )
}

/// A record's span, child of the span that produced the record, linked from `batch`; with its W3C
/// context, the parent of the provider calls it leads to.
pub struct RecordSpan {
    _span: tracing::Span,
    pub traceparent: Option<Arc<str>>,
}

pub fn record_span(
    record: &OwnedMessage,
    envelope: &NotificationEnvelope<'_>,
    consumer_group: &str,
    batch: &tracing::Span,
) -> RecordSpan {
    if !exporting() {
        return RecordSpan {
            _span: tracing::Span::none(),
            traceparent: None,
        };
    }
    let producer_context = record_traceparent(record);
    let span = tracing::info_span!(
        parent: None,
        "process_record",
        otel.name = %format_args!("process {}", record.topic()),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = record.topic(),
        messaging.destination.partition.id = %record.partition(),
        messaging.kafka.offset = record.offset(),
        messaging.consumer.group.name = consumer_group,
        herald.notification.id = %envelope.notification_id,
    );
    set_parent(&span, producer_context.as_deref());
    add_link(&span, traceparent_of(batch).as_deref());
    add_link(batch, producer_context.as_deref());
    let traceparent = traceparent_of(&span).map(Arc::from);
    RecordSpan {
        _span: span,
        traceparent,
    }
}

/// The client span of one provider call (OpenTelemetry HTTP conventions), child of `parent`.
pub fn provider_call_span(
    provider: ProviderId,
    endpoint: &str,
    server_address: &str,
    attempt: i32,
    parent: Option<&str>,
) -> tracing::Span {
    if !exporting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        parent: None,
        "provider_call",
        otel.name = "POST",
        otel.kind = "client",
        http.request.method = "POST",
        url.full = endpoint,
        server.address = server_address,
        http.request.resend_count = tracing::field::Empty,
        herald.provider = provider.as_str(),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if attempt > 1 {
        span.record("http.request.resend_count", attempt - 1);
    }
    set_parent(&span, parent);
    span
}

/// The provider's answer on its call's span: the status code, and for a failure its type.
pub fn record_provider_outcome(span: &tracing::Span, outcome: &SendOutcome) {
    if span.is_none() {
        return;
    }
    let http_status = match outcome {
        SendOutcome::Sent { http_status, .. } => Some(*http_status),
        SendOutcome::Retryable { http_status, .. } | SendOutcome::Permanent { http_status, .. } => {
            *http_status
        }
    };
    if let Some(http_status) = http_status {
        span.record("http.response.status_code", http_status);
    }
    match outcome {
        SendOutcome::Sent { .. } => {}
        SendOutcome::Retryable { error, .. } | SendOutcome::Permanent { error, .. } => {
            let error_type =
                http_status.map_or_else(|| "transport".to_owned(), |status| status.to_string());
            span.record("error.type", error_type.as_str());
            set_error(span, error.clone());
        }
    }
}
