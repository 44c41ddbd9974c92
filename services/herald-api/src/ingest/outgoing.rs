//! A committed notification on its way to Kafka, whether it comes from the fast path (still in
//! memory) or from the relay (read back from PostgreSQL): what its records need, nothing more.

use chrono::{DateTime, Utc};
use herald_domain::{NotificationEnvelope, Priority};
use herald_store::notifications::PublishableNotification;
use uuid::Uuid;

use super::PreparedNotification;

pub struct OutgoingNotification {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_ids: Vec<String>,
    pub priority: Priority,
    pub accepted_at: DateTime<Utc>,
    /// The accepting request's W3C trace context: the parent of the span that publishes it.
    pub trace_parent: Option<String>,
}

impl OutgoingNotification {
    /// The record of one of its recipients.
    pub fn envelope<'a>(&'a self, user_id: &'a str) -> NotificationEnvelope<'a> {
        NotificationEnvelope::new(
            self.id,
            self.tenant_id,
            user_id,
            self.priority,
            self.accepted_at,
        )
    }

    /// Bytes it holds while it waits to be published.
    pub fn weight(&self) -> usize {
        64 + self.trace_parent.as_ref().map_or(0, String::len)
            + self
                .user_ids
                .iter()
                .map(|user_id| user_id.len() + 24)
                .sum::<usize>()
    }
}

impl From<&PreparedNotification> for OutgoingNotification {
    fn from(prepared: &PreparedNotification) -> OutgoingNotification {
        OutgoingNotification {
            id: prepared.id,
            tenant_id: prepared.tenant_id,
            user_ids: prepared.notification.user_ids.clone(),
            priority: prepared.notification.priority,
            accepted_at: prepared.accepted_at,
            trace_parent: prepared.trace_parent.clone(),
        }
    }
}

impl From<PublishableNotification> for OutgoingNotification {
    fn from(row: PublishableNotification) -> OutgoingNotification {
        OutgoingNotification {
            id: row.id,
            tenant_id: row.tenant_id,
            priority: row.priority,
            user_ids: row.user_ids,
            accepted_at: row.created_at,
            trace_parent: row.trace_parent,
        }
    }
}
