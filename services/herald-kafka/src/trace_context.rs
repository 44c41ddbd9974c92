//! The W3C trace context on a Kafka record (docs/DESIGN.md, "Traces"): a `traceparent` record
//! header, as the OpenTelemetry messaging conventions say.

use herald_telemetry::traces::TRACEPARENT;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// The headers that carry `traceparent`.
pub fn producer_headers(traceparent: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: TRACEPARENT,
        value: Some(traceparent),
    })
}

/// The record's `traceparent` header. A value that is not UTF-8 is ignored (it would start a new
/// trace anyway).
pub fn record_traceparent<M: Message>(record: &M) -> Option<String> {
    record.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == TRACEPARENT)
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::to_owned)
    })
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
    fn the_traceparent_travels_in_a_header() {
        let headers = producer_headers(TRACEPARENT_VALUE);
        assert_eq!(
            record_traceparent(&record(Some(headers))).as_deref(),
            Some(TRACEPARENT_VALUE)
        );
        assert_eq!(record_traceparent(&record(None)), None);
        let not_utf8 = OwnedHeaders::new().insert(Header {
            key: TRACEPARENT,
            value: Some(&[0xff, 0xfe][..]),
        });
        assert_eq!(record_traceparent(&record(Some(not_utf8))), None);
    }
}
