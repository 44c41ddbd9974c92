//! Delivery status events, as the `notification-events` topic carries them and webhook
//! subscribers receive them, and the rules of a webhook subscription (docs/DESIGN.md, "Status
//! events and webhook subscriptions").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::tenant_url::url_problem;
use crate::{Channel, DeliveryStatus, FieldError, ProviderId};

/// Subscriptions one tenant may hold: each event is sent to every matching one, so this bounds the
/// sends one status change can cost.
pub const MAX_SUBSCRIPTIONS_PER_TENANT: u64 = 20;
/// Entries of a subscription's `events`: every type once, and `*`.
pub const MAX_EVENT_FILTERS: usize = DeliveryStatus::ALL.len() + 1;
/// The filter that matches every event.
pub const EVERY_EVENT: &str = "*";
const DELIVERY_EVENT_PREFIX: &str = "delivery.";

/// The event type of a delivery's move into `status`: `delivery.<status>`.
pub fn event_type(status: DeliveryStatus) -> String {
    format!("{DELIVERY_EVENT_PREFIX}{}", status.as_str())
}

/// Which events a subscription receives: one type, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFilter {
    Every,
    Delivery(DeliveryStatus),
}

impl EventFilter {
    /// `*` or `delivery.<status>` for a known status; anything else is `None`.
    pub fn parse(text: &str) -> Option<EventFilter> {
        if text == EVERY_EVENT {
            return Some(EventFilter::Every);
        }
        text.strip_prefix(DELIVERY_EVENT_PREFIX)
            .and_then(DeliveryStatus::parse)
            .map(EventFilter::Delivery)
    }

    pub fn matches(self, status: DeliveryStatus) -> bool {
        match self {
            EventFilter::Every => true,
            EventFilter::Delivery(wanted) => wanted == status,
        }
    }

    /// As stored and answered.
    pub fn name(self) -> String {
        match self {
            EventFilter::Every => EVERY_EVENT.to_owned(),
            EventFilter::Delivery(status) => event_type(status),
        }
    }
}

/// One status change of one delivery, as produced to the topic and POSTed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The outbox row's id: the same on every redelivery, so subscribers deduplicate by it (it is
    /// also the `webhook-id`).
    pub id: Uuid,
    /// `delivery.<status>`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub tenant_id: Uuid,
    pub data: StatusEventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEventData {
    pub notification_id: Uuid,
    pub delivery_id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    pub provider: ProviderId,
    pub status: DeliveryStatus,
    /// `null` for a delivery's first status.
    pub previous_status: Option<DeliveryStatus>,
}

/// `events`: at least one of `*` and `delivery.<status>`.
fn event_filters_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(
                    r"^(\*|delivery\.(queued|sending|retrying|sent|failed|skipped|cancelled|delivered|bounced))$",
                )),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_FILTERS))
        .into()
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSubscriptionRequest {
    /// Where events are POSTed: an absolute `https` URL on a public host.
    #[schema(
        example = "https://example.com/herald-events",
        schema_with = crate::tenant_url::public_https_url_schema
    )]
    pub url: String,
    /// `delivery.<status>` for each status wanted (`delivery.queued`, `delivery.sending`,
    /// `delivery.retrying`, `delivery.sent`, `delivery.failed`, `delivery.skipped`,
    /// `delivery.cancelled`, `delivery.delivered`, `delivery.bounced`), or `*` for all.
    #[schema(example = json!(["delivery.sent", "delivery.failed"]), schema_with = event_filters_schema)]
    pub events: Vec<String>,
}

impl WebhookSubscriptionRequest {
    /// The filters, deduplicated in the order given, or every problem, each naming its field.
    pub fn validate(
        &self,
        allow_private_networks: bool,
    ) -> Result<Vec<EventFilter>, Vec<FieldError>> {
        let mut problems: Vec<FieldError> = url_problem("url", &self.url, allow_private_networks)
            .into_iter()
            .collect();
        let mut filters = Vec::new();
        if self.events.is_empty() {
            problems.push(FieldError::new(
                "events",
                "must list at least one event type (`delivery.<status>`) or `*`",
            ));
        } else if self.events.len() > MAX_EVENT_FILTERS {
            problems.push(FieldError::new(
                "events",
                format!("must list at most {MAX_EVENT_FILTERS} event types"),
            ));
        } else {
            for (index, name) in self.events.iter().enumerate() {
                match EventFilter::parse(name) {
                    Some(filter) if !filters.contains(&filter) => filters.push(filter),
                    Some(_) => {}
                    None => problems.push(FieldError::new(
                        format!("events[{index}]"),
                        format!(
                            "`{}` is not an event type: use `*` or `delivery.` and one of {}",
                            name.chars().take(64).collect::<String>(),
                            DeliveryStatus::ALL.map(DeliveryStatus::as_str).join(", ")
                        ),
                    )),
                }
            }
        }
        if problems.is_empty() {
            Ok(filters)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, events: &[&str]) -> WebhookSubscriptionRequest {
        WebhookSubscriptionRequest {
            url: url.to_owned(),
            events: events.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    #[test]
    fn every_delivery_status_is_an_event_type_and_back() {
        for status in DeliveryStatus::ALL {
            let name = event_type(status);
            assert_eq!(
                EventFilter::parse(&name),
                Some(EventFilter::Delivery(status))
            );
            assert_eq!(EventFilter::Delivery(status).name(), name);
        }
        assert_eq!(EventFilter::parse("*"), Some(EventFilter::Every));
        for unknown in [
            "delivery.",
            "delivery.SENT",
            "sent",
            "notification.message",
            "",
        ] {
            assert_eq!(EventFilter::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn filters_match_their_status_or_everything() {
        let sent = EventFilter::Delivery(DeliveryStatus::Sent);
        assert!(sent.matches(DeliveryStatus::Sent));
        assert!(!sent.matches(DeliveryStatus::Failed));
        assert!(DeliveryStatus::ALL
            .into_iter()
            .all(|status| EventFilter::Every.matches(status)));
    }

    #[test]
    fn a_valid_request_gives_its_filters_once_each() {
        let filters = request(
            "https://hooks.example.com/herald",
            &["delivery.sent", "delivery.failed", "delivery.sent"],
        )
        .validate(false)
        .unwrap();
        assert_eq!(
            filters,
            vec![
                EventFilter::Delivery(DeliveryStatus::Sent),
                EventFilter::Delivery(DeliveryStatus::Failed)
            ]
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let problems = request("http://127.0.0.1/hook", &["delivery.sent", "delivery.nope"])
            .validate(false)
            .unwrap_err();
        let fields: Vec<&str> = problems
            .iter()
            .map(|problem| problem.field.as_str())
            .collect();
        assert_eq!(fields, vec!["url", "events[1]"]);

        let problems = request("https://hooks.example.com", &[])
            .validate(false)
            .unwrap_err();
        assert_eq!(problems[0].field, "events");
        let too_many = vec!["*"; MAX_EVENT_FILTERS + 1];
        let problems = request("https://hooks.example.com", &too_many)
            .validate(false)
            .unwrap_err();
        assert_eq!(problems[0].field, "events");
        // Local URLs are allowed only where private networks are.
        assert!(request("http://127.0.0.1:9090/hook", &["*"])
            .validate(true)
            .is_ok());
    }
}
