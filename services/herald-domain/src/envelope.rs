//! The Kafka record: one per (notification, recipient), keyed by recipient. Thin: it names the
//! notification; the worker reads the content once from PostgreSQL. So a record's size does not
//! depend on the content, and a notification to 10,000 users is not 10,000 copies of its body.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Priority;

/// The version this build writes.
pub const ENVELOPE_VERSION: u16 = 2;
/// The versions this build reads. Version 1 also carried the content, which is now ignored.
pub const READABLE_ENVELOPE_VERSIONS: [u16; 2] = [1, 2];

/// Where deliveries that failed for good are reported, beside the notifications topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dead-letter")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEnvelope<'a> {
    pub version: u16,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    pub priority: Priority,
    pub accepted_at: DateTime<Utc>,
}

/// Room kept in every record for its trace context: a `traceparent` is 55 characters, and as a
/// record header it costs at most this much more (name and framing).
pub const TRACE_CONTEXT_BYTES: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a notification envelope: {0}")]
    Undecodable(String),
    #[error("envelope version {0} is not one this worker reads (it reads {READABLE_ENVELOPE_VERSIONS:?})")]
    UnknownVersion(u16),
}

impl<'a> NotificationEnvelope<'a> {
    pub fn new(
        notification_id: Uuid,
        tenant_id: Uuid,
        user_id: &'a str,
        priority: Priority,
        accepted_at: DateTime<Utc>,
    ) -> NotificationEnvelope<'a> {
        NotificationEnvelope {
            version: ENVELOPE_VERSION,
            notification_id,
            tenant_id,
            user_id: Cow::Borrowed(user_id),
            priority,
            accepted_at,
        }
    }

    /// Decodes a record value, refusing versions this build does not know.
    pub fn decode(payload: &'a [u8]) -> Result<NotificationEnvelope<'a>, EnvelopeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u16,
        }
        let version = serde_json::from_slice::<VersionOnly>(payload)
            .map_err(|error| EnvelopeError::Undecodable(error.to_string()))?
            .version;
        if !READABLE_ENVELOPE_VERSIONS.contains(&version) {
            return Err(EnvelopeError::UnknownVersion(version));
        }
        serde_json::from_slice(payload)
            .map_err(|error| EnvelopeError::Undecodable(error.to_string()))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes to JSON")
    }

    /// The record key: one recipient's records share it, so they share a partition.
    pub fn partition_key(tenant_id: Uuid, user_id: &str) -> String {
        format!("{tenant_id}:{user_id}")
    }

    /// Key plus value, as the producer counts a record against `message.max.bytes`, plus the room
    /// its trace context header may take (`TRACE_CONTEXT_BYTES`).
    pub fn record_bytes(&self) -> usize {
        Self::partition_key(self.tenant_id, &self.user_id).len()
            + self.encode().len()
            + TRACE_CONTEXT_BYTES
    }

    /// Detaches the envelope from the buffer it was decoded from.
    pub fn into_owned(self) -> NotificationEnvelope<'static> {
        NotificationEnvelope {
            user_id: Cow::Owned(self.user_id.into_owned()),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(user_id: &str) -> NotificationEnvelope<'_> {
        NotificationEnvelope::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            user_id,
            Priority::Low,
            Utc::now(),
        )
    }

    #[test]
    fn round_trips_through_json() {
        let original = envelope("u1");
        let bytes = original.encode();
        assert_eq!(NotificationEnvelope::decode(&bytes).unwrap(), original);
    }

    #[test]
    fn a_trace_context_field_of_an_earlier_producer_is_ignored() {
        // Earlier builds could carry the trace context in the envelope (for a broker that handled
        // record headers badly); their records may still be in the topic when a new worker reads.
        let mut value = serde_json::to_value(envelope("u1")).unwrap();
        value["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into();
        let bytes = serde_json::to_vec(&value).unwrap();
        let decoded = NotificationEnvelope::decode(&bytes).unwrap();
        assert_eq!(decoded.user_id, "u1");
        assert!(!String::from_utf8(envelope("u1").encode())
            .unwrap()
            .contains("traceparent"));
    }

    #[test]
    fn version_1_records_with_content_are_still_read() {
        let value = serde_json::json!({
            "version": 1, "notification_id": Uuid::now_v7(), "tenant_id": Uuid::now_v7(),
            "user_id": "u1", "channels": ["email"], "subject": "s", "body": "b", "data": {},
            "priority": "high", "scheduled_for": null, "accepted_at": Utc::now(),
        });
        let bytes = serde_json::to_vec(&value).unwrap();
        let decoded = NotificationEnvelope::decode(&bytes).unwrap();
        assert_eq!(decoded.user_id, "u1");
        assert_eq!(decoded.priority, Priority::High);
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused_with_a_reason() {
        let mut value = serde_json::to_value(envelope("u1")).unwrap();
        value["version"] = 3.into();
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            NotificationEnvelope::decode(&bytes),
            Err(EnvelopeError::UnknownVersion(3))
        );
        assert!(matches!(
            NotificationEnvelope::decode(b"\xff not json"),
            Err(EnvelopeError::Undecodable(_))
        ));
        assert!(matches!(
            NotificationEnvelope::decode(br#"{"version": 2}"#),
            Err(EnvelopeError::Undecodable(_))
        ));
    }

    #[test]
    fn record_size_counts_key_and_value() {
        let record = envelope("someone");
        let expected = NotificationEnvelope::partition_key(record.tenant_id, "someone").len()
            + record.encode().len()
            + TRACE_CONTEXT_BYTES;
        assert_eq!(record.record_bytes(), expected);
        assert!(
            record.record_bytes() < 400,
            "thin: {}",
            record.record_bytes()
        );
    }
}
