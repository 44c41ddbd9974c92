//! A committed notification on its way to Kafka, whether it comes from the fast path (still in
//! memory) or from the relay (read back from PostgreSQL).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use herald_domain::envelope::ENVELOPE_VERSION;
use herald_domain::{Channel, NotificationEnvelope, Priority};
use herald_store::notifications::NotificationRow;
use uuid::Uuid;

use super::PreparedNotification;

pub struct OutgoingNotification {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_ids: Vec<String>,
    pub channels: Vec<Channel>,
    pub subject: Option<String>,
    pub body: String,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub priority: Priority,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub accepted_at: DateTime<Utc>,
}

impl OutgoingNotification {
    /// One envelope per recipient.
    pub fn envelopes(&self) -> impl Iterator<Item = NotificationEnvelope<'_>> {
        self.user_ids
            .iter()
            .map(move |user_id| NotificationEnvelope {
                version: ENVELOPE_VERSION,
                notification_id: self.id,
                tenant_id: self.tenant_id,
                user_id: Cow::Borrowed(user_id),
                channels: Cow::Borrowed(&self.channels),
                subject: self.subject.as_deref().map(Cow::Borrowed),
                body: Cow::Borrowed(&self.body),
                data: Cow::Borrowed(&self.data),
                priority: self.priority,
                scheduled_for: self.scheduled_for,
                accepted_at: self.accepted_at,
            })
    }
}

impl From<PreparedNotification> for OutgoingNotification {
    fn from(prepared: PreparedNotification) -> OutgoingNotification {
        let notification = prepared.notification;
        OutgoingNotification {
            id: prepared.id,
            tenant_id: prepared.tenant_id,
            user_ids: notification.user_ids,
            channels: notification.channels,
            subject: notification.subject,
            body: notification.body,
            data: notification.data,
            priority: notification.priority,
            scheduled_for: notification.scheduled_for,
            accepted_at: prepared.accepted_at,
        }
    }
}

impl From<NotificationRow> for OutgoingNotification {
    fn from(row: NotificationRow) -> OutgoingNotification {
        // Rows were validated before they were stored, so unknown names cannot occur; skipping
        // rather than panicking keeps a hand-edited row from stopping the relay.
        let channels = row
            .channels
            .iter()
            .filter_map(|name| Channel::parse(name))
            .collect();
        let data = match row.data {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        OutgoingNotification {
            id: row.id,
            tenant_id: row.tenant_id,
            user_ids: row.user_ids,
            channels,
            subject: row.subject,
            body: row.body,
            data,
            priority: Priority::parse(&row.priority).unwrap_or_default(),
            scheduled_for: row.scheduled_for,
            accepted_at: row.created_at,
        }
    }
}
