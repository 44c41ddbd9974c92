//! The Kafka record: one per (notification, recipient). Self-contained, so the worker needs no
//! database read to know what to send; versioned, so the format can evolve.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Channel, Priority};

pub const ENVELOPE_VERSION: u16 = 1;

/// Where deliveries that failed for good are reported, beside the notifications topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dead-letter")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationEnvelope<'a> {
    pub version: u16,
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    pub channels: Cow<'a, [Channel]>,
    #[serde(borrow)]
    pub subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
    pub data: Cow<'a, serde_json::Map<String, serde_json::Value>>,
    pub priority: Priority,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub accepted_at: DateTime<Utc>,
}

impl NotificationEnvelope<'_> {
    /// Detaches the envelope from the buffer it was decoded from.
    pub fn into_owned(self) -> NotificationEnvelope<'static> {
        NotificationEnvelope {
            version: self.version,
            notification_id: self.notification_id,
            tenant_id: self.tenant_id,
            user_id: Cow::Owned(self.user_id.into_owned()),
            channels: Cow::Owned(self.channels.into_owned()),
            subject: self.subject.map(|subject| Cow::Owned(subject.into_owned())),
            body: Cow::Owned(self.body.into_owned()),
            data: Cow::Owned(self.data.into_owned()),
            priority: self.priority,
            scheduled_for: self.scheduled_for,
            accepted_at: self.accepted_at,
        }
    }

    /// The record key: one recipient's records share it, so they share a partition and stay in order.
    pub fn partition_key(tenant_id: Uuid, user_id: &str) -> String {
        format!("{tenant_id}:{user_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let envelope = NotificationEnvelope {
            version: ENVELOPE_VERSION,
            notification_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            user_id: "u1".into(),
            channels: Cow::Owned(vec![Channel::Email]),
            subject: Some("s".into()),
            body: "b".into(),
            data: Cow::Owned(serde_json::Map::new()),
            priority: Priority::Low,
            scheduled_for: None,
            accepted_at: Utc::now(),
        };
        let bytes = serde_json::to_vec(&envelope).unwrap();
        let decoded: NotificationEnvelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(decoded, envelope);
    }
}
