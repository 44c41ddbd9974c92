//! The W3C trace context on a Kafka record (docs/DESIGN.md, "Traces"): a `traceparent` record
//! header, as the OpenTelemetry messaging conventions say, or a field of the JSON envelope for
//! brokers that handle headers badly (`kafka.trace_context_carrier`). Readers accept both.

use herald_config::TraceContextCarrier;
use herald_telemetry::traces::TRACEPARENT;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// The headers that carry `traceparent` when the carrier is `Headers`; `None` otherwise (a record
/// without headers costs the broker nothing extra).
pub fn producer_headers(carrier: TraceContextCarrier, traceparent: &str) -> Option<OwnedHeaders> {
    match carrier {
        TraceContextCarrier::Headers => Some(OwnedHeaders::new().insert(Header {
            key: TRACEPARENT,
            value: Some(traceparent),
        })),
        TraceContextCarrier::Envelope => None,
    }
}

/// The record's `traceparent`: its header, else the one its envelope carries. A value that is not
/// UTF-8 is ignored (it would start a new trace anyway).
pub fn record_traceparent<M: Message>(record: &M, from_envelope: Option<&str>) -> Option<String> {
    let from_header = record.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == TRACEPARENT)
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::to_owned)
    });
    from_header.or_else(|| from_envelope.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{OwnedMessage, Timestamp};

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn record(headers: Option<OwnedHeaders>) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"{}".to_vec()),
            None,
            "notifications".into(),
            Timestamp::NotAvailable,
            0,
            0,
            headers,
        )
    }

    #[test]
    fn the_header_is_read_first_then_the_envelope() {
        let headers = producer_headers(TraceContextCarrier::Headers, TRACEPARENT_VALUE);
        assert_eq!(
            record_traceparent(&record(headers), Some("from-envelope")).as_deref(),
            Some(TRACEPARENT_VALUE)
        );
        assert_eq!(
            record_traceparent(&record(None), Some(TRACEPARENT_VALUE)).as_deref(),
            Some(TRACEPARENT_VALUE)
        );
        assert_eq!(record_traceparent(&record(None), None), None);
    }

    #[test]
    fn the_envelope_carrier_adds_no_header() {
        assert!(producer_headers(TraceContextCarrier::Envelope, TRACEPARENT_VALUE).is_none());
    }
}
