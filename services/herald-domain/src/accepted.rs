//! A notification Herald has accepted: the validated request with the identity, status and trace
//! it is stored under. One type from validation to the insert (docs/DESIGN.md, "From body to
//! call"): the API builds it, the commit queue carries it, the group commit stores it, and the
//! fast path publishes from it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{NotificationStatus, ValidatedNotification};

#[derive(Debug, Clone)]
pub struct AcceptedNotification {
    /// UUIDv7: ids sort by acceptance time, which the outbox, the relay and the reads rely on.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub notification: ValidatedNotification,
    /// Identifies the request behind an idempotency key ([`ValidatedNotification::request_hash`]).
    pub request_hash: [u8; 32],
    /// `scheduled` or `accepted`.
    pub status: NotificationStatus,
    pub accepted_at: DateTime<Utc>,
    /// The W3C trace context of the request that submitted it (when traces are exported): the
    /// parent of its publication span, stored with it for the relay and the worker.
    pub trace_parent: Option<String>,
    /// Herald's ids of the groups `notification.group_ids` names, in the same order, as they were
    /// resolved when the request was accepted (a group deleted and created again under the same
    /// name is another group).
    pub groups: Vec<Uuid>,
    /// The version of `notification.template` it renders, resolved when the request was accepted
    /// (the latest then, unless the request named one).
    pub template_version: Option<i32>,
}

impl AcceptedNotification {
    pub fn new(
        tenant_id: Uuid,
        notification: ValidatedNotification,
        now: DateTime<Utc>,
        trace_parent: Option<String>,
    ) -> AcceptedNotification {
        AcceptedNotification {
            id: Uuid::now_v7(),
            tenant_id,
            request_hash: notification.request_hash(),
            status: notification.initial_status(now),
            notification,
            accepted_at: now,
            trace_parent,
            groups: Vec::new(),
            template_version: None,
        }
    }

    /// The same, expanding `groups` (resolved from `notification.group_ids`, in its order).
    pub fn with_groups(self, groups: Vec<Uuid>) -> AcceptedNotification {
        debug_assert_eq!(groups.len(), self.notification.group_ids.len());
        AcceptedNotification { groups, ..self }
    }

    /// The same, rendering `version` of its template.
    pub fn with_template_version(self, version: Option<i32>) -> AcceptedNotification {
        debug_assert_eq!(version.is_some(), self.notification.template.is_some());
        AcceptedNotification {
            template_version: version,
            ..self
        }
    }
}
