//! `[status_events]`: delivery status events on their topic, and their delivery to tenants'
//! webhook subscriptions (docs/DESIGN.md, "Status events and webhook subscriptions").

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StatusEventsSettings {
    /// Where every delivery status change is produced (`create-topics` makes it, with
    /// `kafka.partitions` partitions).
    pub topic: String,
    /// How long the topic keeps events, in hours; 0: as long as the notifications' topics
    /// (`retention.days` − 1). The subscriptions' consumer reads events within seconds, and they
    /// take three times a notification's bytes in the brokers' logs (docs/DEPLOY.md, "Sizing for
    /// 50,000 requests/s"): a few days cover any outage of the workers at a tenth of the storage.
    /// Applied when `create-topics` makes the topic (or by the chart's KafkaTopic).
    pub retention_hours: u32,
    /// How often the relay looks for new events when its last pass found few.
    pub relay_interval_ms: u64,
    /// Events one relay pass produces at once.
    pub relay_batch_limit: u64,
    /// How long a relay owns the events it leased; another worker's relay takes them after.
    pub relay_lease_ms: u64,
    /// The consumer group that delivers events to webhook subscriptions.
    pub subscriptions_group_id: String,
    /// How long a tenant's subscriptions are cached in process (a new subscription receives events
    /// within this), and how many tenants' subscriptions are cached at most.
    pub subscription_cache_ttl_ms: u64,
    pub subscription_cache_tenants: u64,
    /// Sends to subscribers in flight at once, per worker, per subscription and per tenant: a
    /// tenant's subscriptions together hold at most `max_in_flight_per_tenant` (its twenty
    /// subscriptions to a tarpit could otherwise hold twenty times the per-subscription share).
    pub max_in_flight: usize,
    pub max_in_flight_per_subscription: usize,
    pub max_in_flight_per_tenant: usize,
    /// Events one subscription may have waiting to be sent (retries included, parked ones not):
    /// while its backlog is full, new events for it are dropped and counted (`dropped_events` in
    /// `GET /v1/webhooks`), so an endpoint that never answers holds a bounded share of the table.
    pub max_pending_per_subscription: u64,
    /// Each send's timeout.
    pub timeout_ms: u64,
    /// Attempts per (event, subscription) before it is parked; the delay between attempts grows
    /// exponentially from `retry_base_ms` up to `retry_max_ms`.
    pub max_attempts: i32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How often the dispatcher looks for due sends when its last pass found none.
    pub dispatch_interval_ms: u64,
}

impl Default for StatusEventsSettings {
    fn default() -> Self {
        StatusEventsSettings {
            topic: "notification-events".to_owned(),
            retention_hours: 0,
            relay_interval_ms: 200,
            relay_batch_limit: 2000,
            relay_lease_ms: 30_000,
            subscriptions_group_id: "herald-webhook-subscriptions".to_owned(),
            subscription_cache_ttl_ms: 5000,
            subscription_cache_tenants: 10_000,
            max_in_flight: 256,
            max_in_flight_per_subscription: 8,
            max_in_flight_per_tenant: 32,
            max_pending_per_subscription: 10_000,
            timeout_ms: 10_000,
            max_attempts: 10,
            retry_base_ms: 1000,
            retry_max_ms: 600_000,
            dispatch_interval_ms: 200,
        }
    }
}

impl StatusEventsSettings {
    /// The topic's `retention.ms`: `retention_hours`, or the notifications' topics' retention.
    pub fn kafka_retention_ms(&self, retention: &crate::RetentionSettings) -> i64 {
        if self.retention_hours == 0 {
            return retention.kafka_retention_ms();
        }
        i64::from(self.retention_hours) * 3600 * 1000
    }

    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        use crate::validate::invalid;
        if self.topic.is_empty() || self.subscriptions_group_id.is_empty() {
            return Err(invalid(
                "status_events.topic",
                "the topic and status_events.subscriptions_group_id must not be empty",
            ));
        }
        if self.relay_batch_limit == 0 || self.relay_interval_ms == 0 {
            return Err(invalid(
                "status_events.relay_batch_limit",
                "the batch limit and status_events.relay_interval_ms must be at least 1",
            ));
        }
        if self.relay_lease_ms < 5000 {
            return Err(invalid(
                "status_events.relay_lease_ms",
                "must be at least 5000: a pass must end before another relay may take its events",
            ));
        }
        if self.max_in_flight == 0
            || self.max_in_flight_per_subscription == 0
            || self.max_in_flight_per_subscription > self.max_in_flight
        {
            return Err(invalid(
                "status_events.max_in_flight_per_subscription",
                "must be at least 1 and at most status_events.max_in_flight",
            ));
        }
        // Above max_in_flight it bounds nothing more (the worker's slots do), which an operator
        // who lowers max_in_flight alone must not have to mend: only zero is refused.
        if self.max_in_flight_per_tenant == 0 {
            return Err(invalid(
                "status_events.max_in_flight_per_tenant",
                "must be at least 1",
            ));
        }
        if self.max_pending_per_subscription == 0 {
            return Err(invalid(
                "status_events.max_pending_per_subscription",
                "must be at least 1",
            ));
        }
        if self.max_attempts < 1 || self.timeout_ms == 0 || self.dispatch_interval_ms == 0 {
            return Err(invalid(
                "status_events.max_attempts",
                "max_attempts, timeout_ms and dispatch_interval_ms must be at least 1",
            ));
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err(invalid(
                "status_events.retry_max_ms",
                "retry_base_ms must be at least 1 and retry_max_ms at least retry_base_ms",
            ));
        }
        Ok(())
    }
}
